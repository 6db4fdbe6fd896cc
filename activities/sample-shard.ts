// Stage: N responses for each prompt of a shard, graded against the reference, written once and cached.
import { Context } from '@temporalio/activity';
import { join } from 'node:path';
import type { ShardHeartbeat, ShardPlan } from '../core/evaluation.js';
import { cacheDir } from '../core/layout.js';
import { renderPrompt } from '../core/prompts.js';
import type { DatasetManifest } from '../core/manifests.js';
import { ProblemRecord } from '../core/records.js';
import { SampleShardResult, type RaftIterationInput } from '../core/raft.js';
import { contentKey, exists, readJson, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { clearScratch, readProblemRange, sampleAndGrade, type GradedResponse } from './sample-and-grade.js';

export type SampleShardInput = Pick<RaftIterationInput, 'prompt' | 'sampling' | 'grader' | 'python' | 'storeRoot'> & {
  policy: RaftIterationInput['policy'];
  policyFingerprint: string;
  dataset: DatasetManifest;
  shard: ShardPlan;
};

/** One line of a samples shard. */
export interface SampledPrompt {
  id: string;
  question: string;
  reference: string;
  answerKind: ProblemRecord['answerKind'];
  responses: GradedResponse[];
  error?: string;
}

export async function sampleShard(input: SampleShardInput): Promise<SampleShardResult> {
  return withFailureClasses(async () => {
    const { dataset, shard, sampling } = input;
    // Everything that determines the samples, and nothing else: a PRM comparison reuses them.
    const key = contentKey({
      v: 1,
      policy: input.policyFingerprint,
      prompt: input.prompt,
      n: sampling.n,
      temperature: sampling.temperature,
      topP: sampling.topP,
      maxTokens: sampling.maxTokens,
      seed: sampling.seed,
      dataset: dataset.sha256,
      start: shard.start,
      end: shard.end,
    });
    const dir = cacheDir(input.storeRoot, 'samples', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...SampleShardResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    const sampled = await sampleAndGrade({
      problems: await readProblemRange(dataset.uri, shard.start, shard.end, (t) => ProblemRecord.parse(JSON.parse(t))),
      promptOf: (p) => renderPrompt(input.prompt, p.question),
      // Distinct seeds per shard, so shards do not repeat each other's randomness.
      params: { n: sampling.n, temperature: sampling.temperature, topP: sampling.topP, maxTokens: sampling.maxTokens, stop: input.prompt.stop, seed: sampling.seed + shard.start },
      policy: input.policy,
      dir,
      python: input.python,
      graderWorkers: input.grader.workers,
      signal: ctx.cancellationSignal,
      onProgress: (done, total) => ctx.heartbeat({ dataset: dataset.name, shard: shard.index, done, total } satisfies ShardHeartbeat),
    });
    const lines: SampledPrompt[] = sampled.map(({ problem, responses, error }) => ({
      id: problem.id,
      question: problem.question,
      reference: problem.answer,
      answerKind: problem.answerKind,
      responses,
      ...(error !== undefined ? { error } : {}),
    }));
    const artifact = await writeJsonlAtomic(join(dir, 'samples.jsonl'), lines);
    const all = lines.flatMap((l) => l.responses);
    const result: SampleShardResult = {
      ...artifact,
      dataset: dataset.name,
      shard: shard.index,
      prompts: lines.length,
      responses: all.length,
      truncated: all.filter((r) => r.finishReason === 'length').length,
      refused: lines.filter((l) => l.error !== undefined).length,
      correct: all.filter((r) => r.correct).length,
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await clearScratch(dir);
    return result;
  });
}
