// This worker's GPU. A server started on the gpu queue keeps running after its activity returns and frees the
// queue's one slot, so the slot alone cannot stop an SFT job (or a second server) from landing beside it. GPU
// stages take this lease first; a server holds it until it is stopped, or until its process is gone.
import { isAlive } from '../clients/process.js';

export interface LeaseHolder {
  /** What holds the GPU, for whoever waits ("policy server for …", "SFT job"). */
  what: string;
  /** A server's pid: once the process is gone, so is its claim. */
  pid?: number;
}

export class GpuLease {
  private holder: LeaseHolder | null = null;

  /** Waits until the GPU is free, calling `onWait` with its holder every `pollMs`; aborts with `signal`. */
  async acquire(what: string, opts: { signal?: AbortSignal; onWait?: (holder: LeaseHolder) => void; pollMs?: number } = {}): Promise<void> {
    for (;;) {
      if (this.holder?.pid !== undefined && !isAlive(this.holder.pid)) this.holder = null;
      if (this.holder === null) {
        this.holder = { what };
        return;
      }
      opts.onWait?.(this.holder);
      opts.signal?.throwIfAborted();
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
    }
  }

  /** The lease passes to a server process: it is held until `release(pid)` or the process exits. */
  handOver(pid: number): void {
    if (this.holder) this.holder.pid = pid;
  }

  /** Frees the GPU; with a pid, only if that server holds it (a stop may come after its claim lapsed). */
  release(pid?: number): void {
    if (pid === undefined || this.holder?.pid === pid) this.holder = null;
  }

  current(): LeaseHolder | null {
    return this.holder;
  }
}

/** One per worker process: every GPU stage of this worker goes through it. */
export const gpuLease = new GpuLease();
