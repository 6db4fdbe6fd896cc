// Stage: one shard of an evaluation set — greedy answers, graded, written once; a retry keeps finished questions.
import { Context } from '@temporalio/activity';
import { join } from 'node:path';
import type { EvaluatePolicyInput, ShardHeartbeat, ShardPlan } from '../core/evaluation.js';
import { tallyResults } from '../core/evaluation.js';
import { cacheDir } from '../core/layout.js';
import { renderPrompt } from '../core/prompts.js';
import { EvalResultRecord, EvalShardResult, type DatasetManifest } from '../core/manifests.js';
import { ProblemRecord } from '../core/records.js';
import { contentKey, exists, readJson, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { clearScratch, readProblemRange, sampleAndGrade } from './sample-and-grade.js';

export type EvaluateShardInput = EvaluatePolicyInput & { dataset: DatasetManifest; shard: ShardPlan; policyFingerprint: string };

export async function evaluateShard(input: EvaluateShardInput): Promise<EvalShardResult> {
  return withFailureClasses(async () => {
    const { dataset, shard } = input;
    const key = contentKey({
      v: 1,
      policy: input.policyFingerprint,
      prompt: input.prompt,
      maxTokens: input.evaluation.maxTokens,
      seed: input.evaluation.seed,
      dataset: dataset.sha256,
      start: shard.start,
      end: shard.end,
    });
    const dir = cacheDir(input.storeRoot, 'eval-shards', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...EvalShardResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    const sampled = await sampleAndGrade({
      problems: await readProblemRange(dataset.uri, shard.start, shard.end, (t) => ProblemRecord.parse(JSON.parse(t))),
      promptOf: (p) => renderPrompt(input.prompt, p.question),
      // Greedy means temperature 0 said out loud: servers default to 1.
      params: { n: 1, temperature: 0, topP: 1, maxTokens: input.evaluation.maxTokens, stop: input.prompt.stop, seed: input.evaluation.seed },
      policy: input.policy,
      dir,
      python: input.python,
      graderWorkers: input.grader.workers,
      signal: ctx.cancellationSignal,
      onProgress: (done, total) => ctx.heartbeat({ dataset: dataset.name, shard: shard.index, done, total } satisfies ShardHeartbeat),
    });

    const records = sampled.map(({ problem, responses, error }) => {
      const r = responses[0];
      return EvalResultRecord.parse({
        id: problem.id,
        question: problem.question,
        reference: problem.answer,
        prediction: r?.text ?? '',
        finishReason: r?.finishReason ?? (error !== undefined ? 'refused' : 'missing'),
        extracted: r?.extracted ?? null,
        correct: r?.correct ?? false,
        subject: problem.meta?.subject,
        level: problem.meta?.level,
      });
    });
    const result: EvalShardResult = { ...(await writeJsonlAtomic(join(dir, 'results.jsonl'), records)), dataset: dataset.name, shard: shard.index, ...tallyResults(records), cached: false };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await clearScratch(dir);
    return result;
  });
}
