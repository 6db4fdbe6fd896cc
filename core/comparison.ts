// Comparing policies tuned with different reward models: the paper's Table 1.
import { z } from 'zod';

/** One row: the untuned baseline, or the policy after a RAFT iteration with one reward model. */
export const ComparisonRow = z.strictObject({
  name: z.string(),
  kind: z.enum(['baseline', 'prm', 'orm', 'oracle']),
  /** Accuracy per evaluation dataset, as a fraction in [0, 1]; null when that run did not finish. */
  accuracy: z.record(z.string(), z.number().nullable()),
  /** Change against the baseline, per dataset, in accuracy points (fractions); null for the baseline itself. */
  delta: z.record(z.string(), z.number().nullable()),
  /** Share of selected responses that are correct (a diagnostic); null for the baseline. */
  selectionPrecision: z.number().nullable(),
  meanSelectedScore: z.number().nullable(),
  /** Why this row has no numbers (its iteration failed), or null. */
  error: z.string().nullable(),
  runDir: z.string().nullable(),
});
export type ComparisonRow = z.infer<typeof ComparisonRow>;

export const ComparisonTable = z.strictObject({
  name: z.string(),
  /** Evaluation dataset names, in column order. */
  datasets: z.array(z.string()),
  rows: z.array(ComparisonRow),
});
export type ComparisonTable = z.infer<typeof ComparisonTable>;
