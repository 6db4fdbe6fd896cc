// What workflows pass between stages: pointers to artifacts and small stats, never the records.
import { z } from 'zod';
import { DatasetSource } from './records.js';

/** A file in the artifact store: where it is, how many records, and its content hash. */
export const ArtifactManifest = z.strictObject({
  uri: z.string(),
  count: z.number().int().nonnegative(),
  sha256: z.string(),
});
export type ArtifactManifest = z.infer<typeof ArtifactManifest>;

export const DatasetManifest = ArtifactManifest.extend({
  name: z.string(),
  source: DatasetSource,
});
export type DatasetManifest = z.infer<typeof DatasetManifest>;

/** Questions and correct answers, overall or for one group (a MATH subject or level). */
export const Tally = z.strictObject({ total: z.number().int(), correct: z.number().int() });
export type Tally = z.infer<typeof Tally>;

export const EvalShardResult = ArtifactManifest.extend({
  dataset: z.string(),
  shard: z.number().int(),
  tally: Tally,
  /** Keys such as `subject:Algebra` and `level:3`. */
  groups: z.record(z.string(), Tally),
  /** Responses that hit max_tokens before finishing. */
  truncated: z.number().int(),
  /** True when the shard's output already existed and nothing was sampled. */
  cached: z.boolean(),
});
export type EvalShardResult = z.infer<typeof EvalShardResult>;

export const DatasetAccuracy = z.strictObject({
  dataset: z.string(),
  source: DatasetSource,
  total: z.number().int(),
  correct: z.number().int(),
  accuracy: z.number(),
  truncated: z.number().int(),
  groups: z.record(z.string(), Tally.extend({ accuracy: z.number() })),
  results: ArtifactManifest,
});
export type DatasetAccuracy = z.infer<typeof DatasetAccuracy>;

export const EvaluationSummary = z.strictObject({
  runDir: z.string(),
  policy: z.string(),
  datasets: z.array(DatasetAccuracy),
  shardsCached: z.number().int(),
  shardsRun: z.number().int(),
});
export type EvaluationSummary = z.infer<typeof EvaluationSummary>;

/** One graded question, as written to the per-question results. */
export const EvalResultRecord = z.strictObject({
  id: z.string(),
  question: z.string(),
  reference: z.string(),
  prediction: z.string(),
  finishReason: z.string(),
  extracted: z.string().nullable(),
  correct: z.boolean(),
  subject: z.string().optional(),
  level: z.number().int().optional(),
});
export type EvalResultRecord = z.infer<typeof EvalResultRecord>;

/**
 * Two evaluations of one dataset matched question by question: of `total` questions, how many the second got right
 * that the first got wrong (`gained`) and the reverse (`lost`) — what the change's paired standard error needs.
 */
export const DatasetChange = z.strictObject({
  dataset: z.string(),
  total: z.number().int().nonnegative(),
  gained: z.number().int().nonnegative(),
  lost: z.number().int().nonnegative(),
});
export type DatasetChange = z.infer<typeof DatasetChange>;
