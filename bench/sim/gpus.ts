// Simulated GPUs on a compressed clock: every tick, each GPU's time is shared among the engines on it that have
// work (a policy replica, a PRM replica: one GPU may hold both), and the time it was busy is recorded in real ms.
import { addInterval, type Interval } from './model.js';

/** An engine on a GPU: a policy replica or a PRM replica. */
export interface Tenant {
  hasWork(): boolean;
  /** Runs for at most `budget` simulated seconds; returns the seconds used. */
  advance(budget: number): number;
}

export class Gpu {
  readonly tenants: Tenant[] = [];
  readonly busy: Interval[] = [];
  constructor(readonly id: number) {}

  /** Shares `dtSim` among the tenants with work (what one leaves over goes to the others); returns the share used. */
  step(dtSim: number): number {
    let active = this.tenants.filter((t) => t.hasWork());
    let left = dtSim;
    let used = 0;
    for (let round = 0; round < 3 && active.length > 0 && left > 1e-12; round += 1) {
      const share = left / active.length;
      const full: Tenant[] = [];
      for (const t of active) {
        const u = t.advance(share);
        used += u;
        left -= u;
        if (u >= share - 1e-12 && t.hasWork()) full.push(t);
      }
      active = full;
    }
    return dtSim > 0 ? used / dtSim : 0;
  }
}

/** Runs the GPUs' clock: `compression` simulated seconds per real second, a step every `tickMs` real ms. */
export function runClock(gpus: Gpu[], compression: number, tickMs: number): { stop: () => void } {
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const dtSim = ((now - last) / 1000) * compression;
    for (const gpu of gpus) {
      const frac = gpu.step(dtSim);
      if (frac > 0) addInterval(gpu.busy, last, last + frac * (now - last), tickMs);
    }
    last = now;
  }, tickMs);
  return { stop: () => clearInterval(timer) };
}
