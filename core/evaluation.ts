// Pure logic of policy evaluation: shard plans, tallies and the accuracy table.
import { z } from 'zod';
import { EvaluationConfig, GraderConfig, PolicyConfig, resolvePrompt, type Config } from './config.js';
import { BadInputError } from './errors.js';
import { EvalResultRecord, type DatasetChange, type EvalShardResult, type Tally } from './manifests.js';
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

/**
 * The questions the policy server refused (a prompt longer than its context, say): graded wrong, recorded with
 * finishReason "refused", and tallied as this group so every summary can say how many of its wrong answers they
 * are. A group, so shard results and summaries carry the count in the schemas they already have.
 */
export const REFUSED_GROUP = 'finish:refused';

/** How many questions of a dataset (or shard) the policy server refused. */
export function refusedCount(d: { groups: Record<string, Tally> }): number {
  return d.groups[REFUSED_GROUP]?.total ?? 0;
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
    if (r.finishReason === 'refused') add(REFUSED_GROUP, false);
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

// Pairing reads only the id and the grade: a field added to the records since a cached shard was written is no reason
// to refuse it.
const Graded = EvalResultRecord.pick({ id: true, correct: true }).loose();

/** One line of a per-question results file: the question's id and whether it was answered right. */
export function parseGradedLine(text: string, where: { file: string; line: number }): { id: string; correct: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BadInputError(`${where.file} line ${where.line}: not JSON`);
  }
  const parsed = Graded.safeParse(json);
  if (!parsed.success) throw new BadInputError(`${where.file} line ${where.line}: not a graded question (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`);
  return { id: parsed.data.id, correct: parsed.data.correct };
}

/**
 * Two evaluations of one dataset matched by question id: fed all of the first's graded questions, then the
 * second's one at a time (only the first's ids and grades are held), it counts the questions gained and lost.
 * A repeated id pairs in order of appearance: both files list the dataset in its own order. Files that do not hold
 * the same ids are a BadInputError naming one that differs.
 */
export class ResultPairing {
  /** Per id, the first evaluation's grades not yet paired, and how many were. */
  private readonly pending = new Map<string, { grades: boolean[]; paired: number }>();
  private total = 0;
  private gained = 0;
  private lost = 0;

  constructor(private readonly files: { before: string; after: string }) {}

  addBefore(q: { id: string; correct: boolean }): void {
    const entry = this.pending.get(q.id);
    if (entry) entry.grades.push(q.correct);
    else this.pending.set(q.id, { grades: [q.correct], paired: 0 });
  }

  addAfter(q: { id: string; correct: boolean }): void {
    const entry = this.pending.get(q.id);
    const before = entry?.grades.shift();
    if (!entry || before === undefined) throw this.mismatch(q.id, this.files.after, this.files.before, entry !== undefined);
    entry.paired += 1;
    this.total += 1;
    if (q.correct && !before) this.gained += 1;
    if (before && !q.correct) this.lost += 1;
  }

  counts(dataset: string): DatasetChange {
    for (const [id, { grades, paired }] of this.pending) {
      if (grades.length > 0) throw this.mismatch(id, this.files.before, this.files.after, paired > 0);
    }
    return { dataset, total: this.total, gained: this.gained, lost: this.lost };
  }

  private mismatch(id: string, inFile: string, notIn: string, repeated: boolean): BadInputError {
    const where = repeated ? `more often than in ${notIn}` : `but not in ${notIn}`;
    return new BadInputError(`cannot pair the two evaluations question by question: question "${id}" is in ${inFile} ${where}`);
  }
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
