// Pure logic of policy evaluation: shard plans, tallies and the accuracy table.
import { z } from 'zod';
import { EvaluationConfig, GraderConfig, PolicyConfig, resolvePrompt, type Config } from './config.js';
import type { EvalResultRecord, EvalShardResult, Tally } from './manifests.js';
import { PromptTemplate } from './prompts.js';

/** Everything `evaluatePolicy` needs, small enough for a workflow payload. */
export const EvaluatePolicyInput = z.strictObject({
  policy: PolicyConfig.omit({ localServer: true }),
  prompt: PromptTemplate,
  evaluation: EvaluationConfig,
  grader: GraderConfig,
  python: z.string(),
  storeRoot: z.string(),
  taskQueues: z.strictObject({ cpu: z.string(), gpu: z.string() }),
});
export type EvaluatePolicyInput = z.infer<typeof EvaluatePolicyInput>;

export function evaluatePolicyInputFromConfig(config: Config, policyModel?: string): EvaluatePolicyInput {
  const { localServer: _unused, ...policy } = config.policy;
  return {
    policy: policyModel ? { ...policy, model: policyModel } : policy,
    prompt: resolvePrompt(config.prompt),
    evaluation: config.evaluation,
    grader: config.grader,
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
  };
}

export interface ShardPlan {
  index: number;
  start: number;
  end: number;
}

export function planShards(count: number, shardSize: number): ShardPlan[] {
  const shards: ShardPlan[] = [];
  for (let start = 0, index = 0; start < count; start += shardSize, index += 1) {
    shards.push({ index, start, end: Math.min(count, start + shardSize) });
  }
  return shards;
}

export function tallyResults(records: readonly EvalResultRecord[]): Pick<EvalShardResult, 'tally' | 'groups' | 'truncated'> {
  const groups: Record<string, Tally> = {};
  const add = (key: string, correct: boolean) => {
    const g = (groups[key] ??= { total: 0, correct: 0 });
    g.total += 1;
    if (correct) g.correct += 1;
  };
  let correct = 0;
  let truncated = 0;
  for (const r of records) {
    if (r.correct) correct += 1;
    if (r.finishReason === 'length') truncated += 1;
    if (r.subject !== undefined) add(`subject:${r.subject}`, r.correct);
    if (r.level !== undefined) add(`level:${r.level}`, r.correct);
  }
  return { tally: { total: records.length, correct }, groups, truncated };
}

export function accuracy(t: Tally): number {
  return t.total === 0 ? 0 : t.correct / t.total;
}

/** Adds up one dataset's shard results. */
export function combineShards(shards: readonly EvalShardResult[]) {
  const tally: Tally = { total: 0, correct: 0 };
  const groups: Record<string, Tally & { accuracy: number }> = {};
  let truncated = 0;
  for (const s of shards) {
    tally.total += s.tally.total;
    tally.correct += s.tally.correct;
    truncated += s.truncated;
    for (const [key, g] of Object.entries(s.groups)) {
      const into = (groups[key] ??= { total: 0, correct: 0, accuracy: 0 });
      into.total += g.total;
      into.correct += g.correct;
    }
  }
  for (const g of Object.values(groups)) g.accuracy = accuracy(g);
  return { ...tally, accuracy: accuracy(tally), truncated, groups };
}

/** Live progress of one evaluation, as the `progress` query returns it. */
export const EvaluationProgress = z.strictObject({
  stage: z.enum(['preparing', 'sampling', 'summarizing', 'done']),
  datasets: z.array(
    z.strictObject({
      name: z.string(),
      total: z.number().int(),
      shardsTotal: z.number().int(),
      shardsDone: z.number().int(),
      questionsDone: z.number().int(),
      correct: z.number().int(),
    }),
  ),
});
export type EvaluationProgress = z.infer<typeof EvaluationProgress>;

/** What a shard activity reports in its heartbeat, read back by the CLI for live progress. */
export const ShardHeartbeat = z.strictObject({ dataset: z.string(), shard: z.number().int(), done: z.number().int(), total: z.number().int() });
export type ShardHeartbeat = z.infer<typeof ShardHeartbeat>;
