// What the paper-scale bench reads off a run: stage windows from workflow histories, simulated durations, busy
// shares per stage, history sizes against Temporal's limits, and the table. Pure.
import { busyShares, type Interval } from './model.js';

/** Temporal's limits per workflow history (docs.temporal.io/workflow-execution/limits): warn, then fail. */
export const HISTORY_LIMITS = { warnEvents: 10_240, warnBytes: 10 * 2 ** 20, maxEvents: 51_200, maxBytes: 50 * 2 ** 20 };

/** A history event as the bench reads it. */
export interface HistoryEvent {
  id: number;
  /** Real epoch ms. */
  time: number;
  /** The activity type, on an ActivityTaskScheduled event. */
  scheduled?: string;
  /** The scheduled event's id, on an activity's completion (or failure, timeout, cancellation). */
  closesActivity?: number;
}

export interface Window {
  start: number;
  end: number;
  count: number;
}

/** Per activity type: from its first scheduling to the last close of one of its activities. */
export function activityWindows(events: readonly HistoryEvent[]): Map<string, Window> {
  const typeOf = new Map<number, string>();
  const windows = new Map<string, Window>();
  for (const e of events) {
    if (e.scheduled) {
      typeOf.set(e.id, e.scheduled);
      const w = windows.get(e.scheduled);
      if (w) w.count += 1;
      else windows.set(e.scheduled, { start: e.time, end: e.time, count: 1 });
    } else if (e.closesActivity !== undefined) {
      const type = typeOf.get(e.closesActivity);
      const w = type ? windows.get(type) : undefined;
      if (w) w.end = Math.max(w.end, e.time);
    }
  }
  return windows;
}

/**
 * A stage of a run: its real window and its compression — simulated seconds per real second; 1 for CPU stages,
 * which run here at real speed (the SFT stand-in may run on a clock of its own: nothing but its heartbeats runs then).
 */
export interface Stage {
  name: string;
  start: number;
  end: number;
  compression: number;
}

export function simulatedSeconds(stage: Stage): number {
  return ((stage.end - stage.start) / 1000) * stage.compression;
}

/** Mean busy share of the GPUs in each stage, and each GPU's share over the whole run. */
export function stageBusy(stages: readonly Stage[], perGpu: ReadonlyArray<readonly Interval[]>, run: { start: number; end: number }) {
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    stages: stages.map((s) => ({ name: s.name, meanBusy: mean(busyShares(perGpu, s.start, s.end)), perGpu: busyShares(perGpu, s.start, s.end) })),
    overall: busyShares(perGpu, run.start, run.end),
  };
}

export function historyVerdict(events: number, bytes: number): string {
  const l = HISTORY_LIMITS;
  if (events >= l.maxEvents || bytes >= l.maxBytes) return 'OVER THE LIMIT';
  if (events >= l.warnEvents || bytes >= l.warnBytes) return 'past the warning';
  const share = Math.max(events / l.warnEvents, bytes / l.warnBytes);
  return `${Math.round(share * 100)}% of the warning`;
}

/** Seconds as h:mm:ss (simulated durations are hours long). */
export function hms(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export const pct = (x: number) => `${Math.round(x * 100)}%`;
