// PRL labels of a labeling run's solutions (issue 14): on the same steps as its ER-PRM counts, from the solutions'
// log-probs under π and π0 (the log-prob stage run on the labels shards). Pure: one solution in, its labels, its
// export line and its agreement pair out; store/prl-export.ts streams the run.
import { z } from 'zod';
import { BadInputError } from './errors.js';
import { ArtifactManifest } from './manifests.js';
import { PromptTemplate } from './prompts.js';
import { STEP_TAG, type ExportFormat } from './label-export.js';
import type { LabeledSolution } from './labeling.js';
import { labelFromCounts } from './labels.js';
import { LogprobJobSettings, LogprobShardResult, prlLabels, prlResponse, type LogprobLine, type PrlBoundary, type PrlLabelRecord } from './prl.js';
import type { AgreementSolution } from './prl-agreement.js';
import { stepSpans, type StepSplitConfig } from './steps.js';

/** The labelLogprobs workflow's input: a finished labeling run's shards and the two checkpoints. */
export const LabelLogprobsInput = z.strictObject({
  /** The run's labels shards (its summary's), in order. */
  shards: z.array(ArtifactManifest.extend({ dataset: z.string(), shard: z.number().int() })),
  /** π: the current policy's checkpoint, and π0's; the same one gives PRL = r. */
  policy: z.string().min(1),
  initialPolicy: z.string().min(1),
  /** The template the solutions were generated with: the prompt is their context. */
  prompt: PromptTemplate,
  logprobs: LogprobJobSettings,
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
  maxAttempts: z.number().int().positive(),
  timeoutHours: z.number().positive(),
});
export type LabelLogprobsInput = z.infer<typeof LabelLogprobsInput>;

export const LabelLogprobsResult = z.strictObject({
  /** Per labels shard, in order: its log-prob file under π, and under π0 (null when π0 is π). */
  shards: z.array(z.strictObject({ current: LogprobShardResult, initial: LogprobShardResult.nullable() })),
});
export type LabelLogprobsResult = z.infer<typeof LabelLogprobsResult>;

/** One solution's PRL labels per step of the run's own steps, or null when it has none (no steps, a refused prefix). */
export function solutionPrlLabels(
  s: LabeledSolution,
  lines: { current: LogprobLine; initial: LogprobLine },
  how: StepSplitConfig,
  eta: number,
  boundary: PrlBoundary,
): PrlLabelRecord | null {
  if (s.error !== undefined || s.steps.length === 0 || s.counts.length !== s.steps.length) return null;
  // The run stored its steps' texts; cutting the solution again must give the same steps, or the labels would not
  // be on the steps the counts are on.
  const texts = stepSpans(s.solution, how).map((x) => x.text);
  if (texts.length !== s.steps.length || texts.some((t, i) => t !== s.steps[i])) {
    const at = texts.findIndex((t, i) => t !== s.steps[i]);
    throw new BadInputError(
      `solution ${s.id}: the config's steps (${JSON.stringify(how)}) cut it into ${texts.length} steps, the labeling run into ${s.steps.length}, first different at step ${(at < 0 ? Math.min(texts.length, s.steps.length) : at) + 1}: give the config the labeling run used`,
    );
  }
  const response = prlResponse({ id: s.id, promptId: s.problemId, text: s.solution, steps: how, outcome: s.correct ? 1 : 0, ...lines });
  return prlLabels(response, eta, boundary);
}

/** What `label export --kind prl --format jsonl` writes per solution: raw PRL values, which are not in [0, 1]. */
export interface PrlJsonlExample {
  id: string;
  question: string;
  steps: string[];
  /** r_PRL per step, raw: r ± KL/η. */
  labels: number[];
  correct: boolean;
  eta: number;
  boundary: PrlBoundary;
  /** r − (1/η)·ln π/π0 of the whole response, and ln π/π0 itself. */
  sequence: number;
  logRatio: number;
}

export interface PrlMathShepherdExample {
  id: string;
  input: string;
  label: string;
  /** The PRL values clipped to [0, 1]: Math-Shepherd's values are probabilities. */
  value: number[];
}

const clip01 = (x: number) => Math.min(1, Math.max(0, x));

/** The export line of one solution's PRL labels, and how many of its values were clipped (math-shepherd only). */
export function prlExportExample(s: LabeledSolution, labels: PrlLabelRecord, format: ExportFormat): { example: PrlJsonlExample | PrlMathShepherdExample; clipped: number } {
  if (format === 'jsonl') {
    const { stepValues, eta, boundary, sequence, logRatio } = labels;
    return { example: { id: s.id, question: s.question, steps: s.steps, labels: stepValues, correct: s.correct, eta, boundary, sequence, logRatio }, clipped: 0 };
  }
  const value = labels.stepValues.map(clip01);
  const untagged = (text: string) => text.split(STEP_TAG).join(' ');
  const lines = (mark: (i: number) => string) => s.steps.map((step, i) => `${untagged(step)} ${mark(i)}`).join('\n');
  const question = untagged(s.question);
  return {
    example: { id: s.id, input: `${question} ${lines(() => STEP_TAG)}`, label: `${question} ${lines((i) => ((value[i] as number) >= 0.5 ? '+' : '-'))}`, value },
    clipped: labels.stepValues.filter((x, i) => x !== value[i]).length,
  };
}

/** The (PRL, ER(η)) pair of one solution on its steps, for the agreement table; both at the same η. */
export function agreementPair(s: LabeledSolution, labels: PrlLabelRecord): AgreementSolution {
  return { id: s.id, prl: labels.stepValues, er: s.counts.map((c) => labelFromCounts(c, 'er', labels.eta)) };
}
