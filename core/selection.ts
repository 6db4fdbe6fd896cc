// Rejection sampling's keep step: the top-ranked response per prompt, and what the kept set looks like.
import { z } from 'zod';

export const SelectionConfig = z.strictObject({
  /** `prm`: rank by the reward model; `oracle`: keep a response whose answer is right (ground-truth baseline). */
  mode: z.enum(['prm', 'oracle']).default('prm'),
  dropNoAnswer: z.boolean().default(true),
  dropTruncated: z.boolean().default(true),
});
export type SelectionConfig = z.infer<typeof SelectionConfig>;

export interface Candidate {
  index: number;
  finishReason: string;
  /** The response's aggregated score; NaN when it has none (no steps, or scoring failed). */
  score: number;
  extracted: string | null;
  correct: boolean;
}

export type Rejection = 'no-answer' | 'truncated' | 'no-score' | 'none-correct';

/**
 * The best candidate, or why there is none. Ties go to the lowest index so a re-run selects the same
 * response. Correctness is used only in oracle mode: in prm mode it is a diagnostic, never an input.
 */
export function selectTopResponse(candidates: readonly Candidate[], cfg: SelectionConfig): { selected: Candidate | null; rejected: Map<Rejection, number> } {
  const rejected = new Map<Rejection, number>();
  const reject = (why: Rejection) => rejected.set(why, (rejected.get(why) ?? 0) + 1);
  let best: Candidate | null = null;
  for (const c of candidates) {
    if (cfg.dropTruncated && c.finishReason === 'length') {
      reject('truncated');
      continue;
    }
    if (cfg.dropNoAnswer && c.extracted === null) {
      reject('no-answer');
      continue;
    }
    if (cfg.mode === 'oracle') {
      if (!c.correct) {
        reject('none-correct');
        continue;
      }
      if (best === null || c.index < best.index) best = c;
      continue;
    }
    if (Number.isNaN(c.score)) {
      reject('no-score');
      continue;
    }
    if (best === null || c.score > best.score || (c.score === best.score && c.index < best.index)) best = c;
  }
  return { selected: best, rejected };
}

export const SelectionStats = z.strictObject({
  prompts: z.number().int(),
  kept: z.number().int(),
  /** Kept responses that have a score (all of them in prm mode), and the sum and min of those scores. */
  scored: z.number().int(),
  scoreSum: z.number(),
  minSelectedScore: z.number().nullable(),
  /** Kept responses whose final answer is right: the reward model's precision, a diagnostic. */
  selectedCorrect: z.number().int(),
  /** Prompts with at least one right response among all sampled: the ceiling for `selectedCorrect`. */
  promptsWithACorrectResponse: z.number().int(),
  rejected: z.record(z.string(), z.number().int()),
});
export type SelectionStats = z.infer<typeof SelectionStats>;

export function emptySelectionStats(): SelectionStats {
  return { prompts: 0, kept: 0, scored: 0, scoreSum: 0, minSelectedScore: null, selectedCorrect: 0, promptsWithACorrectResponse: 0, rejected: {} };
}

/** One prompt's outcome as stats, to be merged. */
export function selectionStatsOf(candidates: readonly Candidate[], outcome: ReturnType<typeof selectTopResponse>): SelectionStats {
  const s = outcome.selected;
  const scored = s !== null && !Number.isNaN(s.score);
  return {
    prompts: 1,
    kept: s ? 1 : 0,
    scored: scored ? 1 : 0,
    scoreSum: scored ? s.score : 0,
    minSelectedScore: scored ? s.score : null,
    selectedCorrect: s?.correct ? 1 : 0,
    promptsWithACorrectResponse: candidates.some((c) => c.correct) ? 1 : 0,
    rejected: Object.fromEntries(outcome.rejected),
  };
}

export function mergeSelectionStats(a: SelectionStats, b: SelectionStats): SelectionStats {
  const rejected = { ...a.rejected };
  for (const [why, n] of Object.entries(b.rejected)) rejected[why] = (rejected[why] ?? 0) + n;
  const mins = [a.minSelectedScore, b.minSelectedScore].filter((x): x is number => x !== null);
  return {
    prompts: a.prompts + b.prompts,
    kept: a.kept + b.kept,
    scored: a.scored + b.scored,
    scoreSum: a.scoreSum + b.scoreSum,
    minSelectedScore: mins.length ? Math.min(...mins) : null,
    selectedCorrect: a.selectedCorrect + b.selectedCorrect,
    promptsWithACorrectResponse: a.promptsWithACorrectResponse + b.promptsWithACorrectResponse,
    rejected,
  };
}

export function meanSelectedScore(s: SelectionStats): number | null {
  return s.scored === 0 ? null : s.scoreSum / s.scored;
}
