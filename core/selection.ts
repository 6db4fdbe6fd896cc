// Rejection sampling's keep step: one response per prompt, and what the kept set looks like against the baselines.
import { z } from 'zod';
import { keyedSeed, mulberry32 } from './random.js';

/** The selection modes that need no reward model; a comparison runs each of them beside its reward models. */
export const SELECTION_BASELINES = ['oracle', 'random', 'majority'] as const;
export type SelectionBaseline = (typeof SELECTION_BASELINES)[number];

/**
 * `prm`: the top response by the reward model's aggregated score. `prl`: the top response by its PRL value
 * r − (1/η)·ln π/π0 (core/prl.ts; r is the grade, so among right answers the one the policy drifted least on). The
 * baselines: `oracle` keeps a right response (ground truth), `random` one at random, `majority` one that gives the
 * final answer given most often (label-free).
 */
export const SelectionMode = z.enum(['prm', 'prl', ...SELECTION_BASELINES]);

/** The modes that rank by a score per response (`Candidate.score`): the top one is kept, ties to the lowest index. */
export function ranksByScore(mode: SelectionMode): mode is 'prm' | 'prl' {
  return mode === 'prm' || mode === 'prl';
}
export type SelectionMode = z.infer<typeof SelectionMode>;

export const SelectionConfig = z.strictObject({
  mode: SelectionMode.default('prm'),
  /** Seeds `random` mode's pick together with each prompt's id, so a re-run keeps the same responses. */
  seed: z.int({ error: 'expected a non-negative integer' }).nonnegative({ error: 'expected a non-negative integer' }).default(0),
  dropNoAnswer: z.boolean().default(true),
  dropTruncated: z.boolean().default(true),
});
export type SelectionConfig = z.infer<typeof SelectionConfig>;

export interface Candidate {
  index: number;
  finishReason: string;
  /** The response's score (prm: its aggregated step scores; prl: its PRL value); NaN when it has none (no steps, scoring failed, or not scored at all). */
  score: number;
  extracted: string | null;
  correct: boolean;
}

export type Rejection = 'no-answer' | 'truncated' | 'no-score' | 'none-correct' | 'below-min-score';

export interface SelectionOutcome {
  selected: Candidate | null;
  rejected: Map<Rejection, number>;
}

/**
 * The candidate `cfg.mode` keeps for prompt `promptId`, or why there is none. Ties go to the lowest index so a
 * re-run selects the same response. Correctness is read here only in oracle mode (in prl mode it is already in
 * the score, as the outcome r): elsewhere it is a diagnostic, never an input. In the modes that rank by score, a
 * top response scored below `minScore` is not kept (the prompt is dropped, as oracle drops one with no right answer).
 */
export function selectTopResponse(candidates: readonly Candidate[], cfg: SelectionConfig, promptId: string, minScore?: number): SelectionOutcome {
  const rejected = new Map<Rejection, number>();
  const reject = (why: Rejection, n = 1) => {
    if (n > 0) rejected.set(why, (rejected.get(why) ?? 0) + n);
  };
  const eligible = eligibleCandidates(candidates, cfg, reject);
  switch (cfg.mode) {
    case 'oracle': {
      const right = eligible.filter((c) => c.correct);
      reject('none-correct', eligible.length - right.length);
      return { selected: right[0] ?? null, rejected };
    }
    case 'random':
      return { selected: randomPick(eligible, cfg.seed, promptId), rejected };
    case 'majority':
      // A response without an answer cannot vote (it is only eligible when dropNoAnswer is off).
      reject('no-answer', eligible.filter((c) => c.extracted === null).length);
      return { selected: majorityPick(eligible), rejected };
    case 'prm':
    case 'prl': {
      let best: Candidate | null = null;
      for (const c of eligible) {
        if (Number.isNaN(c.score)) reject('no-score');
        // Strictly greater: candidates come in index order, so a tie keeps the lowest index.
        else if (best === null || c.score > best.score) best = c;
      }
      if (best !== null && minScore !== undefined && best.score < minScore) {
        reject('below-min-score');
        return { selected: null, rejected };
      }
      return { selected: best, rejected };
    }
  }
}

/** The candidates any mode may keep, in index order: those not dropped for a missing answer or a cut at max_tokens. */
function eligibleCandidates(candidates: readonly Candidate[], cfg: SelectionConfig, reject: (why: Rejection) => void = () => {}): Candidate[] {
  return [...candidates]
    .sort((a, b) => a.index - b.index)
    .filter((c) => {
      if (cfg.dropTruncated && c.finishReason === 'length') {
        reject('truncated');
        return false;
      }
      if (cfg.dropNoAnswer && c.extracted === null) {
        reject('no-answer');
        return false;
      }
      return true;
    });
}

/** One of `eligible` (in index order) uniformly at random, from a stream seeded by (seed, prompt id). */
function randomPick(eligible: readonly Candidate[], seed: number, promptId: string): Candidate | null {
  if (eligible.length === 0) return null;
  return eligible[Math.floor(mulberry32(keyedSeed(seed, promptId))() * eligible.length)] as Candidate;
}

/**
 * The lowest-index response giving the final answer given most often (answers compared after trimming); a tie
 * between answers goes to the one whose first response has the lowest index. `eligible` is in index order.
 */
function majorityPick(eligible: readonly Candidate[]): Candidate | null {
  const votes = new Map<string, { count: number; first: Candidate }>();
  for (const c of eligible) {
    if (c.extracted === null) continue;
    const answer = c.extracted.trim();
    const v = votes.get(answer);
    if (v) v.count += 1;
    else votes.set(answer, { count: 1, first: c });
  }
  // Map order is first-appearance order, so a strict comparison keeps the earliest answer on a tie.
  let top: { count: number; first: Candidate } | null = null;
  for (const v of votes.values()) if (top === null || v.count > top.count) top = v;
  return top?.first ?? null;
}

export const SelectionStats = z.strictObject({
  prompts: z.number().int(),
  kept: z.number().int(),
  /** Kept responses that have a score (all of them in prm and prl mode, none in the baselines), and their sum and min. */
  scored: z.number().int(),
  scoreSum: z.number(),
  minSelectedScore: z.number().nullable(),
  /** Kept responses whose final answer is right: the selection's precision, a diagnostic. */
  selectedCorrect: z.number().int(),
  // The baselines' right picks on the same candidates, whatever the mode, to read `selectedCorrect` against.
  /** Prompts with at least one right response among all sampled: what `oracle` keeps right, the ceiling. */
  promptsWithACorrectResponse: z.number().int(),
  /** Sum over prompts of the share of eligible responses that are right: what `random` keeps right on average. */
  randomExpectedCorrect: z.number(),
  /** Prompts where the majority rule picks a right response: what `majority` keeps right. */
  majorityCorrect: z.number().int(),
  rejected: z.record(z.string(), z.number().int()),
});
export type SelectionStats = z.infer<typeof SelectionStats>;

export function emptySelectionStats(): SelectionStats {
  return {
    prompts: 0,
    kept: 0,
    scored: 0,
    scoreSum: 0,
    minSelectedScore: null,
    selectedCorrect: 0,
    promptsWithACorrectResponse: 0,
    randomExpectedCorrect: 0,
    majorityCorrect: 0,
    rejected: {},
  };
}

/** One prompt's outcome, and the baselines' picks from the same candidates, as stats to be merged. */
export function selectionStatsOf(candidates: readonly Candidate[], outcome: SelectionOutcome, cfg: SelectionConfig): SelectionStats {
  const s = outcome.selected;
  const scored = s !== null && !Number.isNaN(s.score);
  const eligible = eligibleCandidates(candidates, cfg);
  return {
    prompts: 1,
    kept: s ? 1 : 0,
    scored: scored ? 1 : 0,
    scoreSum: scored ? s.score : 0,
    minSelectedScore: scored ? s.score : null,
    selectedCorrect: s?.correct ? 1 : 0,
    promptsWithACorrectResponse: candidates.some((c) => c.correct) ? 1 : 0,
    randomExpectedCorrect: eligible.length === 0 ? 0 : eligible.filter((c) => c.correct).length / eligible.length,
    majorityCorrect: majorityPick(eligible)?.correct ? 1 : 0,
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
    randomExpectedCorrect: a.randomExpectedCorrect + b.randomExpectedCorrect,
    majorityCorrect: a.majorityCorrect + b.majorityCorrect,
    rejected,
  };
}

export function meanSelectedScore(s: SelectionStats): number | null {
  return s.scored === 0 ? null : s.scoreSum / s.scored;
}
