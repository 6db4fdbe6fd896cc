// Best-of-N statistics of reward models over sampled responses: the paper's Tables 2–10 and figures.
import { z } from 'zod';
import { aggregateStepScores, Aggregation } from './aggregate.js';
import { BestOfNConfig, GraderConfig, isTrainedRewardModel, MAX_DRAWS, PolicyConfig, resolvePrompt, SamplingConfig, ServedRewardModelConfig, type Config } from './config.js';
import { BadInputError } from './errors.js';
import { PromptTemplate } from './prompts.js';
import { mulberry32 } from './random.js';
import { RaftIterationResult, type SampleShardResult } from './raft.js';
import { StepSplitConfig } from './steps.js';

/** One sampled response with its reward scores: a line of `prm-raft bon --scores FILE.jsonl`. */
export const ScoredResponse = z.strictObject({
  problem_id: z.string().min(1),
  /** The extracted final answer (votes group on it); null when none could be extracted. */
  answer: z.string().nullable(),
  correct: z.boolean(),
  /** One score per step (a single score for an ORM), in [0, 1] as the PRM service's contract has them. */
  step_scores: z.array(z.number().min(0, { error: 'expected scores in [0, 1]' }).max(1, { error: 'expected scores in [0, 1]' })),
});
export type ScoredResponse = z.infer<typeof ScoredResponse>;

/** Accuracies for one N, as fractions in [0, 1]: best-of-N and the votes averaged over random N-subsets, pass@N exact. */
export const BonRow = z.strictObject({
  n: z.number().int().positive(),
  best_of_n: z.number(),
  majority: z.number(),
  weighted: z.number(),
  /** The expected share of problems with a right response among N drawn without replacement: 1 − C(n−c, N)/C(n, N). */
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

/** A reward model whose checking or scoring failed for good: it has no tables, the others still do. */
export const FailedRewardModel = z.strictObject({ name: z.string(), kind: z.enum(['prm', 'orm']), error: z.string() });
export type FailedRewardModel = z.infer<typeof FailedRewardModel>;

/** The `bestOfN` workflow's output: a table per reward model and aggregation. */
export const BonReport = z.strictObject({
  name: z.string(),
  /** Test problems and responses sampled per problem. */
  problems: z.number().int().nonnegative(),
  samplesPerProblem: z.number().int().positive(),
  rewardModels: z.array(z.strictObject({ name: z.string(), kind: z.enum(['prm', 'orm']), tables: z.array(BonTable) })),
  failed: z.array(FailedRewardModel).optional(),
});
export type BonReport = z.infer<typeof BonReport>;

/** How to draw: the N values, how many random N-subsets per N, the seed, and how step scores become one. */
export const BonOptions = z.strictObject({
  /** Absent: powers of two up to the largest per-problem response count (see `defaultNs`). */
  ns: z
    .array(z.int({ error: 'expected positive integers' }).positive({ error: 'expected positive integers' }))
    .min(1, { error: 'expected at least one N' })
    .refine((ns) => ns.every((n, i) => i === 0 || n > (ns[i - 1] as number)), { error: 'expected ascending values without repeats' })
    .optional(),
  // Ten draws cost nothing even at 500 problems × 64 responses and put the mean's standard error at about spread/3.
  draws: z
    .int({ error: 'expected a positive integer' })
    .positive({ error: 'expected a positive integer' })
    .max(MAX_DRAWS, { error: `expected at most ${MAX_DRAWS} draws` })
    .default(10),
  seed: z.int({ error: 'expected a non-negative integer' }).nonnegative({ error: 'expected a non-negative integer' }).default(0),
  aggregate: Aggregation.default('min'),
});
export type BonOptions = z.input<typeof BonOptions>;

/** 1, 2, 4, … up to `maxCount`, and `maxCount` itself when it is not a power of two: the full pool is the last row. */
export function defaultNs(maxCount: number): number[] {
  const ns: number[] = [];
  for (let n = 1; n <= maxCount; n *= 2) ns.push(n);
  if (maxCount >= 1 && ns[ns.length - 1] !== maxCount) ns.push(maxCount);
  return ns;
}

/** A response reduced to what the statistics need; `score` is NaN when it has no steps. */
interface Scored {
  score: number;
  answer: string | null;
  correct: boolean;
}

/** Per drawn method: [best-of-N, majority vote, weighted vote]. pass@N needs no draws (see `passAtN`). */
type Outcome<T> = [T, T, T];
const METHODS = [0, 1, 2] as const;
type Method = (typeof METHODS)[number];

/**
 * Best-of-N curve of one reward model. Conventions, chosen so a re-run gives the same table:
 * - best-of-N picks the highest aggregated score; a NaN score (no steps) ranks below every number;
 *   ties (NaNs included) go to the response earliest in input order.
 * - Votes group non-null answers; an answer counts as correct if any response in the subset giving it is
 *   correct (graders may disagree on the same extracted string). Ties between answers go to the answer that
 *   appears first in input order. A subset with no answer at all is wrong.
 * - The weighted vote sums aggregated scores per answer, a NaN counting 0 (meant for scores ≥ 0, like the
 *   PRM's probabilities: with negative scores more votes would weigh less).
 * - Each N draws from its own stream derived from (seed, N), so adding an N leaves the other rows unchanged.
 * - pass@N is not drawn: it is the exact expectation over every N-subset (`passAtN`), averaged over problems.
 */
export function bestOfNTable(responses: readonly ScoredResponse[], opts: BonOptions = {}): BonTable {
  const parsed = BonOptions.safeParse(opts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadInputError(`best-of-N options: ${issue?.path.join('.') || '(top level)'}: ${issue?.message}`);
  }
  const { draws, seed, aggregate } = parsed.data;
  if (responses.length === 0) throw new BadInputError('best-of-N: no responses');

  const byProblem = new Map<string, Scored[]>();
  for (const r of responses) {
    const group = byProblem.get(r.problem_id) ?? [];
    if (group.length === 0) byProblem.set(r.problem_id, group);
    group.push({ score: aggregateStepScores(r.step_scores, aggregate), answer: r.answer, correct: r.correct });
  }
  const problems = [...byProblem.values()];
  const maxCount = problems.reduce((m, p) => Math.max(m, p.length), 0);
  const ns = parsed.data.ns ?? defaultNs(maxCount);

  const results = ns.map((n): BonRow => {
    const problemsShort = problems.filter((p) => p.length < n).length;
    // With every problem using all its responses, every draw is the same.
    const drawCount = problems.every((p) => p.length <= n) ? 1 : draws;
    const rand = mulberry32(streamSeed(seed, n));
    // Integer counts per draw: identical draws then give a spread of exactly 0.
    const counts: Outcome<number>[] = [];
    for (let d = 0; d < drawCount; d++) {
      const c: Outcome<number> = [0, 0, 0];
      for (const p of problems) {
        const ok = judge(p.length <= n ? p : sample(p, n, rand));
        for (const i of METHODS) if (ok[i]) c[i] += 1;
      }
      counts.push(c);
    }
    const meanCount = (i: Method) => counts.reduce((s, c) => s + c[i], 0) / counts.length;
    const mean = (i: Method) => meanCount(i) / problems.length;
    const m0 = meanCount(0);
    const spread = Math.sqrt(counts.reduce((s, c) => s + (c[0] - m0) ** 2, 0) / counts.length) / problems.length;
    const passAt = problems.reduce((s, p) => s + passAtN(p.length, p.filter((r) => r.correct).length, n), 0) / problems.length;
    return { n, best_of_n: mean(0), majority: mean(1), weighted: mean(2), pass_at_n: passAt, spread, problems_short: problemsShort };
  });

  const notes = results
    .filter((r) => r.problems_short > 0)
    .map((r) => `${r.problems_short} of ${problems.length} problems have fewer than ${r.n} responses; they use all they have`);
  const noSteps = responses.filter((r) => r.step_scores.length === 0).length;
  if (noSteps > 0) {
    notes.push(`${noSteps} of ${responses.length} responses have no step scores: they rank below every scored response and add 0 to the weighted vote`);
  }
  const noAnswer = responses.filter((r) => r.answer === null).length;
  if (noAnswer > 0) notes.push(`${noAnswer} of ${responses.length} responses have no extracted answer: they do not vote`);

  return { aggregate, draws, seed, problems: problems.length, results, reward_hacking: rewardHackingFlag(results), notes };
}

/**
 * pass@N of one problem with `total` responses, `correct` of them right: the probability that N of them drawn
 * without replacement hold a right one, 1 − C(total − correct, N) / C(total, N) (the unbiased estimator of
 * Chen et al., 2021). The ratio is the running product ∏_{i<N} (total − correct − i)/(total − i), every factor in
 * [0, 1): no factorials, no overflow, exact to rounding. A problem with N or fewer responses uses them all.
 */
export function passAtN(total: number, correct: number, n: number): number {
  if (!Number.isInteger(total) || !Number.isInteger(correct) || !Number.isInteger(n) || correct < 0 || correct > total || n < 1) {
    throw new RangeError(`passAtN: expected 0 ≤ correct ≤ total and n ≥ 1, integers; got total ${total}, correct ${correct}, n ${n}`);
  }
  if (correct === 0) return 0;
  if (total - correct < n) return 1; // every N-subset (or the whole pool) holds a right one
  let allWrong = 1;
  for (let i = 0; i < n; i++) allWrong *= (total - correct - i) / (total - i);
  return 1 - allWrong;
}

/**
 * Set when best-of-N at the largest N is below its peak by more than the noise: max(spread at the peak,
 * spread at the largest N, 0.005). The spread is one draw's standard deviation, larger than the mean's, so
 * the flag errs towards silence; the floor ignores dips under half a point where the spread is 0 (the full
 * pool, or one draw). The peak is the smallest N reaching the maximum.
 */
export function rewardHackingFlag(rows: readonly BonRow[]): BonTable['reward_hacking'] {
  const sorted = [...rows].sort((a, b) => a.n - b.n);
  const last = sorted[sorted.length - 1];
  if (last === undefined) return null;
  const peak = sorted.reduce((p, r) => (r.best_of_n > p.best_of_n ? r : p));
  const noise = Math.max(peak.spread, last.spread, 0.005);
  if (peak.n === last.n || peak.best_of_n - last.best_of_n <= noise) return null;
  return { peak_n: peak.n, peak: peak.best_of_n, last_n: last.n, last: last.best_of_n };
}

/** The table as Markdown, with its notes and the reward-hacking flag, for people to read. */
export function bonTableMarkdown(table: BonTable): string {
  const f = (x: number) => x.toFixed(3);
  const lines = [
    `Best-of-N over ${table.problems} problems, ${table.aggregate} aggregation, mean of ${table.draws} draws (seed ${table.seed})`,
    '',
    '| N | best-of-N ± spread | majority | weighted | pass@N |',
    '|---:|---:|---:|---:|---:|',
    ...table.results.map((r) => `| ${r.n} | ${f(r.best_of_n)} ± ${f(r.spread)} | ${f(r.majority)} | ${f(r.weighted)} | ${f(r.pass_at_n)} |`),
  ];
  const h = table.reward_hacking;
  if (h) lines.push('', `Reward hacking: best-of-N falls from ${f(h.peak)} at N = ${h.peak_n} to ${f(h.last)} at N = ${h.last_n}.`);
  if (table.notes.length > 0) lines.push('', ...table.notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

/** Everything the `bestOfN` workflow needs: the policy to sample, the test problems, the reward models, the table settings. */
export const BestOfNInput = z.strictObject({
  name: z.string(),
  policy: PolicyConfig.omit({ localServer: true }),
  prompt: PromptTemplate,
  /** The test problems and how many responses each gets. */
  sampling: SamplingConfig,
  steps: StepSplitConfig,
  rewardModels: z.array(ServedRewardModelConfig.omit({ localServer: true })).min(1),
  tables: BestOfNConfig.omit({ sampling: true }),
  grader: GraderConfig,
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
});
export type BestOfNInput = z.infer<typeof BestOfNInput>;

/** The workflow's input from a config, or a list of what the config lacks for it. */
export function bestOfNInputFromConfig(config: Config): BestOfNInput {
  const missing: string[] = [];
  if (!config.bestOfN) missing.push('bestOfN (the test problems, responses per problem and the Ns)');
  if (!config.rewardModels) missing.push('rewardModels (the reward models to evaluate)');
  for (const m of (config.rewardModels ?? []).filter(isTrainedRewardModel)) {
    missing.push(`baseUrls for reward model "${m.name}" (best-of-N scores with served models; \`prm-raft compare\` trains it and prints its checkpoint, serve that)`);
  }
  if (missing.length > 0 || !config.bestOfN || !config.rewardModels) {
    throw new Error(`config "${config.name}" cannot run best-of-N; it lacks: ${missing.join('; ')}`);
  }
  const { localServer: _p, ...policy } = config.policy;
  const { sampling, ...tables } = config.bestOfN;
  return {
    name: config.name,
    policy,
    prompt: resolvePrompt(config.prompt),
    sampling,
    steps: config.steps,
    rewardModels: config.rewardModels.flatMap((m) => {
      if (isTrainedRewardModel(m)) return [];
      const { localServer: _r, ...model } = m;
      return [model];
    }),
    tables,
    grader: config.grader,
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
  };
}

export const BestOfNResult = z.strictObject({
  runDir: z.string(),
  report: BonReport,
  sampling: RaftIterationResult.shape.sampling,
  /** summary.json (this result), report.html and table.md in the run folder. */
  files: z.strictObject({ summary: z.string(), html: z.string(), markdown: z.string() }),
});
export type BestOfNResult = z.infer<typeof BestOfNResult>;

/** Live progress of a best-of-N run, as the `progress` query returns it. */
export const BestOfNProgress = z.strictObject({
  stage: z.enum(['preparing', 'sampling', 'tables', 'done']),
  shardsTotal: z.number().int(),
  shardsSampled: z.number().int(),
  promptsTotal: z.number().int(),
  rewardModels: z.array(z.strictObject({ name: z.string(), shardsScored: z.number().int(), error: z.string().nullable() })),
});
export type BestOfNProgress = z.infer<typeof BestOfNProgress>;

export function samplingTotals(shards: readonly SampleShardResult[]): BestOfNResult['sampling'] {
  const sum = (f: (s: SampleShardResult) => number) => shards.reduce((n, s) => n + f(s), 0);
  return { prompts: sum((s) => s.prompts), responses: sum((s) => s.responses), truncated: sum((s) => s.truncated), refused: sum((s) => s.refused), correct: sum((s) => s.correct) };
}

/** An ORM gives one score per response, which every aggregation leaves as it is: one table says it all. */
export function aggregationsFor(kind: 'prm' | 'orm', aggregations: readonly Aggregation[]): Aggregation[] {
  return kind === 'orm' ? aggregations.slice(0, 1) : [...aggregations];
}

/** A sampled prompt reduced to what the statistics read: each response's extracted answer and grade. */
export interface SampledAnswers {
  id: string;
  responses: ReadonlyArray<{ extracted: string | null; correct: boolean }>;
}

/**
 * One reward model's view of sampled prompts: response j of a prompt pairs with its j-th step-score list.
 * A prompt without responses (refused by the policy server) adds nothing.
 */
export function scoredResponses(prompts: readonly SampledAnswers[], stepScores: ReadonlyMap<string, readonly number[][]>): ScoredResponse[] {
  return prompts.flatMap((p) => {
    const scores = stepScores.get(p.id) ?? [];
    if (scores.length !== p.responses.length) {
      throw new BadInputError(`prompt "${p.id}" has ${p.responses.length} responses but ${scores.length} score lists: the scores do not belong to these samples`);
    }
    return p.responses.map((r, j) => ({ problem_id: p.id, answer: r.extracted, correct: r.correct, step_scores: [...(scores[j] as number[])] }));
  });
}

/** Whether the subset's pick is right, per method. */
function judge(subset: readonly Scored[]): Outcome<boolean> {
  let best = subset[0] as Scored;
  const votes = new Map<string, { count: number; weight: number; correct: boolean }>();
  for (const r of subset) {
    if (!Number.isNaN(r.score) && (Number.isNaN(best.score) || r.score > best.score)) best = r;
    if (r.answer === null) continue;
    const v = votes.get(r.answer) ?? { count: 0, weight: 0, correct: false };
    votes.set(r.answer, { count: v.count + 1, weight: v.weight + (Number.isNaN(r.score) ? 0 : r.score), correct: v.correct || r.correct });
  }
  // Strict comparisons keep the first answer in input order (Map order) on ties.
  let majority: { count: number; correct: boolean } | null = null;
  let weighted: { weight: number; correct: boolean } | null = null;
  for (const v of votes.values()) {
    if (majority === null || v.count > majority.count) majority = v;
    if (weighted === null || v.weight > weighted.weight) weighted = v;
  }
  return [best.correct, majority?.correct ?? false, weighted?.correct ?? false];
}

/** A uniform random n-subset (partial Fisher–Yates), kept in input order so ties break the same way. */
function sample<T>(items: readonly T[], n: number, rand: () => number): T[] {
  const idx = items.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i] as T);
}

/** A 32-bit seed per (seed, N), mixing the seed's high bits too. */
function streamSeed(seed: number, n: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ Math.floor(seed / 2 ** 32), 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ n, 0x27d4eb2d);
  return (h ^ (h >>> 15)) >>> 0;
}
