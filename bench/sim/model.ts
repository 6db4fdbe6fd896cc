// The throughput model of the simulated GPUs, and the accounting of their busy time: pure, no I/O, no clocks.
import type { SimConfig } from './config.js';

type PolicyParams = SimConfig['policy'];

// ---------------------------------------------------------------------------------------------------------------
// Token counts. A simulated response stands for a real solution: each step line carries the token count of the
// real step it stands for, as "[N tok]"; text without a marker counts characters ÷ charsPerToken.
// ---------------------------------------------------------------------------------------------------------------

const MARKER = /\[(\d+) tok\]/g;

/** Tokens of a text: the sum of its "[N tok]" markers plus its unmarked characters at `charsPerToken`. */
export function textTokens(text: string, charsPerToken: number): number {
  let marked = 0;
  let markerChars = 0;
  for (const m of text.matchAll(MARKER)) {
    marked += Number(m[1]);
    markerChars += m[0].length;
  }
  return marked + Math.ceil((text.length - markerChars) / charsPerToken);
}

// ---------------------------------------------------------------------------------------------------------------
// vLLM continuous batching, as a fluid model: every running sequence advances one token per decode step, a step
// takes stepBaseMs + b × stepPerSeqMs at batch b, prompts are prefilled first (vLLM schedules prefills ahead of
// decodes), and at most maxBatch sequences run; the rest wait.
// ---------------------------------------------------------------------------------------------------------------

export function decodeStepSeconds(batch: number, p: Pick<PolicyParams, 'stepBaseMs' | 'stepPerSeqMs'>): number {
  return (p.stepBaseMs + batch * p.stepPerSeqMs) / 1000;
}

/** Output tokens per second of a replica decoding `batch` sequences. */
export function decodeTokensPerSecond(batch: number, p: Pick<PolicyParams, 'stepBaseMs' | 'stepPerSeqMs'>): number {
  return batch / decodeStepSeconds(batch, p);
}

export interface Sequence {
  /** Prompt tokens still to prefill (a prefix-cache hit removes the cached part). */
  prefill: number;
  /** Output tokens still to decode. */
  decode: number;
}

/**
 * Advances the running sequences of one replica by at most `budget` simulated seconds: prefill first, in order,
 * then decode steps for the sequences whose prompt is in, until the budget is spent or the first of them finishes
 * (the caller then fills the freed slots and calls again, as continuous batching does). Returns the seconds used
 * (less than the budget when a sequence finished or the replica ran out of work) and the sequences that finished.
 * Fractional tokens are fine: it is a fluid model.
 */
export function advanceBatch(running: Sequence[], budget: number, p: Pick<PolicyParams, 'stepBaseMs' | 'stepPerSeqMs' | 'prefillTokensPerSecond'>): { used: number; finished: Sequence[] } {
  let left = budget;
  for (const s of running) {
    if (left <= 0) break;
    if (s.prefill <= 0) continue;
    const need = s.prefill / p.prefillTokensPerSecond;
    if (need <= left) {
      left -= need;
      s.prefill = 0;
    } else {
      s.prefill -= left * p.prefillTokensPerSecond;
      left = 0;
    }
  }
  const decoding = running.filter((s) => s.prefill <= 0 && s.decode > 0);
  if (decoding.length > 0 && left > 0) {
    const shortest = Math.min(...decoding.map((s) => s.decode));
    const steps = Math.min(left / decodeStepSeconds(decoding.length, p), shortest);
    left -= steps * decodeStepSeconds(decoding.length, p);
    for (const s of decoding) s.decode = Math.max(0, s.decode - steps);
  }
  const finished = running.filter((s) => s.prefill <= 0 && s.decode <= 1e-9);
  return { used: budget - left, finished };
}

/** A prefix cache: the longest cached prefix of a prompt, cut at line ends (where a step prefix ends). LRU. */
export class PrefixCache {
  private readonly entries = new Map<string, number>();
  constructor(private readonly capacity: number) {}

  /** Characters of `prompt` already cached (0 when none), then caches every line-end prefix of it. */
  lookupAndInsert(prompt: string): number {
    const cuts: number[] = [];
    for (let i = prompt.indexOf('\n'); i >= 0; i = prompt.indexOf('\n', i + 1)) cuts.push(i + 1);
    if (cuts[cuts.length - 1] !== prompt.length) cuts.push(prompt.length);
    let hit = 0;
    for (let k = cuts.length - 1; k >= 0; k -= 1) {
      if (this.entries.has(prompt.slice(0, cuts[k]))) {
        hit = cuts[k] as number;
        break;
      }
    }
    for (const c of cuts) {
      const key = prompt.slice(0, c);
      this.entries.delete(key);
      this.entries.set(key, c);
    }
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return hit;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// How many GPUs serve the policy and how many the PRM, and what a stage should cost at best.
// ---------------------------------------------------------------------------------------------------------------

export interface GpuSplit {
  gpus: number;
  policy: number;
  prm: number;
  /** One GPU: the policy and the PRM share it (each gets half of it while both have work). */
  shared: boolean;
}

/**
 * The split of `gpus` between policy replicas and PRM replicas that finishes sampling + scoring soonest when both
 * overlap: minimises max(policyWork / P, prmWork / R) over P + R = gpus (work in GPU-seconds). One GPU is shared.
 */
export function splitGpus(gpus: number, policyWork: number, prmWork: number): GpuSplit {
  if (!Number.isInteger(gpus) || gpus < 1) throw new Error(`gpus must be a positive integer, got ${gpus}`);
  if (gpus === 1) return { gpus, policy: 1, prm: 1, shared: true };
  let best = { policy: gpus - 1, cost: Infinity };
  for (let policy = 1; policy < gpus; policy += 1) {
    const cost = Math.max(policyWork / policy, prmWork / (gpus - policy));
    if (cost < best.cost - 1e-12) best = { policy, cost };
  }
  return { gpus, policy: best.policy, prm: gpus - best.policy, shared: false };
}

/** The shortest possible sampling + scoring time (seconds) for a split: perfectly fed GPUs. */
export function idealOverlapSeconds(split: GpuSplit, policyWork: number, prmWork: number): number {
  if (split.shared) return policyWork + prmWork;
  return Math.max(policyWork / split.policy, prmWork / split.prm);
}

/** SFT time in simulated seconds: start-up, tokens × epochs over all GPUs, the final save. */
export function sftSeconds(tokens: number, epochs: number, gpus: number, p: SimConfig['sft']): number {
  return p.startupSeconds + (tokens * epochs) / (gpus * p.tokensPerSecondPerGpu) + p.saveSeconds;
}

/**
 * The compression (simulated seconds per real second) that makes the GPU-bound part of a run last
 * `targetRealSeconds` here, never below `min` (so a short simulated stage is not slowed to a crawl).
 */
export function chooseCompression(idealSimSeconds: number, targetRealSeconds: number, min = 1): number {
  if (!(targetRealSeconds > 0)) throw new Error('targetRealSeconds must be positive');
  return Math.max(min, Math.round(idealSimSeconds / targetRealSeconds));
}

// ---------------------------------------------------------------------------------------------------------------
// Busy time: intervals [start, end) in real milliseconds, per GPU.
// ---------------------------------------------------------------------------------------------------------------

export type Interval = [number, number];

/** Adds [start, end) to sorted, disjoint intervals, merging what touches (within `slack` ms). */
export function addInterval(intervals: Interval[], start: number, end: number, slack = 0): void {
  if (!(end > start)) return;
  const last = intervals[intervals.length - 1];
  if (last && start <= last[1] + slack && start >= last[0]) {
    last[1] = Math.max(last[1], end);
    return;
  }
  intervals.push([start, end]);
  if (last && start < last[0]) {
    intervals.sort((a, b) => a[0] - b[0]);
    const merged = mergeIntervals(intervals, slack);
    intervals.splice(0, intervals.length, ...merged);
  }
}

export function mergeIntervals(intervals: readonly Interval[], slack = 0): Interval[] {
  const sorted = [...intervals].filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + slack) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Milliseconds of `intervals` inside the window [from, to). */
export function overlapMs(intervals: readonly Interval[], from: number, to: number): number {
  let total = 0;
  for (const [a, b] of intervals) total += Math.max(0, Math.min(b, to) - Math.max(a, from));
  return total;
}

/** Busy share of each GPU in a window: 0..1 each (overlapping intervals of one GPU counted once). */
export function busyShares(perGpu: ReadonlyArray<readonly Interval[]>, from: number, to: number): number[] {
  const span = to - from;
  if (!(span > 0)) return perGpu.map(() => 0);
  return perGpu.map((intervals) => Math.min(1, overlapMs(mergeIntervals(intervals), from, to) / span));
}
