// Best-of-N statistics of reward models over sampled responses: the paper's Tables 2–10 and figures.
import { z } from 'zod';
import { Aggregation } from './aggregate.js';

/** One sampled response with its reward scores: a line of `prm-raft bon --scores FILE.jsonl`. */
export const ScoredResponse = z.strictObject({
  problem_id: z.string().min(1),
  /** The extracted final answer (votes group on it); null when none could be extracted. */
  answer: z.string().nullable(),
  correct: z.boolean(),
  /** One score per step (a single score for an ORM). */
  step_scores: z.array(z.number()),
});
export type ScoredResponse = z.infer<typeof ScoredResponse>;

/** Accuracies for one N, as fractions in [0, 1], averaged over random N-subsets. */
export const BonRow = z.strictObject({
  n: z.number().int().positive(),
  best_of_n: z.number(),
  majority: z.number(),
  weighted: z.number(),
  pass_at_n: z.number(),
  /** Standard deviation of best_of_n across the draws. */
  spread: z.number(),
  /** Problems with fewer than n responses: they used all they had. */
  problems_short: z.number().int().nonnegative(),
});
export type BonRow = z.infer<typeof BonRow>;

/** One reward model's curve over N, with one aggregation of step scores. */
export const BonTable = z.strictObject({
  aggregate: Aggregation,
  draws: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  problems: z.number().int().nonnegative(),
  results: z.array(BonRow),
  /** Set when best-of-N falls as N grows past its peak (the paper saw it at N = 64). */
  reward_hacking: z.strictObject({ peak_n: z.number().int(), peak: z.number(), last_n: z.number().int(), last: z.number() }).nullable(),
  /** Plain-language remarks, e.g. how many problems had fewer responses than the largest N. */
  notes: z.array(z.string()),
});
export type BonTable = z.infer<typeof BonTable>;

/** The `bestOfN` workflow's output: a table per reward model and aggregation. */
export const BonReport = z.strictObject({
  name: z.string(),
  /** Test problems and responses sampled per problem. */
  problems: z.number().int().nonnegative(),
  samplesPerProblem: z.number().int().positive(),
  rewardModels: z.array(z.strictObject({ name: z.string(), kind: z.enum(['prm', 'orm']), tables: z.array(BonTable) })),
});
export type BonReport = z.infer<typeof BonReport>;
