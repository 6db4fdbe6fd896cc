// ER-PRM labeling, the pure part: what the workflow passes around and how one solution's step counts are built.
import { z } from 'zod';
import { EndpointConfig, GraderConfig, LabelingConfig, resolvePrompt, type Config } from './config.js';
import { StepCounts } from './labels.js';
import { ArtifactManifest } from './manifests.js';
import { PromptTemplate } from './prompts.js';
import { AnswerKind } from './records.js';
import { StepSplitConfig, stepSpans } from './steps.js';

export const LabelPrmDataInput = z.strictObject({
  name: z.string(),
  generator: EndpointConfig,
  completer: EndpointConfig,
  prompt: PromptTemplate,
  labeling: LabelingConfig.omit({ generator: true, completer: true }),
  steps: StepSplitConfig,
  grader: GraderConfig,
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
});
export type LabelPrmDataInput = z.infer<typeof LabelPrmDataInput>;

export function labelPrmDataInputFromConfig(config: Config): LabelPrmDataInput {
  if (!config.labeling) throw new Error(`config "${config.name}" has no labeling section (the problems to label, solutions and completions per step)`);
  const { generator, completer, ...labeling } = config.labeling;
  const { localServer: _l, checkpoint: _c, ...policy } = config.policy;
  const gen = generator ?? policy;
  return {
    name: config.name,
    generator: gen,
    completer: completer ?? gen,
    prompt: resolvePrompt(config.prompt),
    labeling,
    steps: config.steps,
    grader: config.grader,
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
  };
}

/** One generated solution with its Monte-Carlo counts: a line of a labels shard. */
export const LabeledSolution = z.strictObject({
  /** `problem id/solution index`. */
  id: z.string(),
  problemId: z.string(),
  question: z.string(),
  reference: z.string(),
  answerKind: AnswerKind,
  solution: z.string(),
  finishReason: z.string(),
  correct: z.boolean(),
  steps: z.array(z.string()),
  /** One per step; the last is the solution's own outcome (m = 1, no completions). Empty when `error` is set. */
  counts: z.array(StepCounts),
  /** Why some prefix got no completions (the server refused it); such a solution has no counts. */
  error: z.string().optional(),
});
export type LabeledSolution = z.infer<typeof LabeledSolution>;

/** A step prefix to complete: the prompt plus the solution up to and including step `step`. */
export interface PrefixJob {
  id: string;
  solutionId: string;
  problemId: string;
  step: number;
  prefix: string;
  answer: string;
  answerKind: AnswerKind;
}

/** Every prefix but the last step's: the last step's label is the solution's own correctness. */
export function prefixJobs(
  solution: { id: string; problemId: string; text: string; answer: string; answerKind: AnswerKind },
  how: StepSplitConfig,
): PrefixJob[] {
  const spans = stepSpans(solution.text, how);
  return spans.slice(0, -1).map((span, step) => ({
    id: `${solution.id}#${step}`,
    solutionId: solution.id,
    problemId: solution.problemId,
    step,
    prefix: solution.text.slice(0, span.end),
    answer: solution.answer,
    answerKind: solution.answerKind,
  }));
}

/** Counts per step from the graded completions of each prefix, then the solution's own outcome. */
export function stepCounts(stepsTotal: number, completions: ReadonlyMap<number, readonly boolean[]>, solutionCorrect: boolean): StepCounts[] {
  if (stepsTotal === 0) return [];
  const counts: StepCounts[] = [];
  for (let step = 0; step < stepsTotal - 1; step += 1) {
    const graded = completions.get(step) ?? [];
    counts.push({ k: graded.filter(Boolean).length, m: graded.length });
  }
  counts.push({ k: solutionCorrect ? 1 : 0, m: 1 });
  return counts;
}

/** What a shard, or a whole run, labeled. */
const LabelCounts = z.strictObject({
  problems: z.number().int(),
  solutions: z.number().int(),
  correctSolutions: z.number().int(),
  /** Steps labeled, and completions sampled for them. */
  steps: z.number().int(),
  completions: z.number().int(),
  /** Solutions left out because a prefix was refused. */
  incomplete: z.number().int(),
});
type LabelCounts = z.infer<typeof LabelCounts>;

export const LabelShardResult = ArtifactManifest.extend({
  dataset: z.string(),
  shard: z.number().int(),
  start: z.number().int(),
  end: z.number().int(),
  ...LabelCounts.shape,
  cached: z.boolean(),
});
export type LabelShardResult = z.infer<typeof LabelShardResult>;

/** Written before any shard runs, so an unfinished run can say which shards it still lacks. */
export const LabelPlan = z.strictObject({
  shards: z.array(z.strictObject({ dataset: z.string(), shard: z.number().int(), start: z.number().int(), end: z.number().int(), resultPath: z.string() })),
});
export type LabelPlan = z.infer<typeof LabelPlan>;

export const LabelRunSummary = z.strictObject({
  kind: z.literal('labels'),
  runDir: z.string(),
  generator: z.string(),
  completer: z.string(),
  shards: z.array(LabelShardResult),
  ...LabelCounts.shape,
});
export type LabelRunSummary = z.infer<typeof LabelRunSummary>;

export function summarizeLabelShards(runDir: string, input: LabelPrmDataInput, shards: LabelShardResult[]): LabelRunSummary {
  const totals = Object.fromEntries(
    Object.keys(LabelCounts.shape).map((k) => [k, shards.reduce((n, s) => n + s[k as keyof LabelCounts], 0)]),
  ) as LabelCounts;
  return { kind: 'labels', runDir, generator: input.generator.model, completer: input.completer.model, shards, ...totals };
}

export const LabelProgress = z.strictObject({
  stage: z.enum(['preparing', 'labeling', 'done']),
  shardsTotal: z.number().int(),
  shardsDone: z.number().int(),
  problemsTotal: z.number().int(),
  problemsDone: z.number().int(),
  completions: z.number().int(),
});
export type LabelProgress = z.infer<typeof LabelProgress>;

/** A labels shard's heartbeat: which phase, and how far. */
export const LabelHeartbeat = z.strictObject({
  dataset: z.string(),
  shard: z.number().int(),
  phase: z.enum(['solutions', 'completions']),
  done: z.number().int(),
  total: z.number().int(),
});
export type LabelHeartbeat = z.infer<typeof LabelHeartbeat>;
