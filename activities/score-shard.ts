// Stage: PRM scores for every step of every response of a samples shard, one request per prompt.
import { Context } from '@temporalio/activity';
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PrmClient } from '../clients/prm.js';
import type { ShardHeartbeat } from '../core/evaluation.js';
import { cacheDir } from '../core/layout.js';
import { ScoreShardResult, type PrmEndpoint, type RaftIterationInput, type SampleShardResult } from '../core/raft.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { splitSteps } from '../core/steps.js';
import { contentKey, exists, readJson, readJsonlLines, sha256, toJsonl, writeFileAtomic } from '../store/files.js';
import { recoverPartial } from '../store/partial.js';
import { withFailureClasses } from './failures.js';
import { heartbeatWhile } from './heartbeat.js';
import type { SampledPrompt } from './sample-shard.js';

export type ScoreShardInput = Pick<RaftIterationInput, 'steps' | 'storeRoot'> & { prm: PrmEndpoint; prmFingerprint: string; samples: SampleShardResult };

/** One line of a scores shard: per response, its step scores ([] when it has no steps). */
export interface ScoredPrompt {
  id: string;
  stepScores: number[][];
}

export async function scoreShard(input: ScoreShardInput): Promise<ScoreShardResult> {
  return withFailureClasses(async () => {
    const { samples } = input;
    const key = contentKey({ v: 1, samples: samples.sha256, prm: input.prmFingerprint, kind: input.prm.kind, steps: input.steps });
    const dir = cacheDir(input.storeRoot, 'scores', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...ScoreShardResult.parse(await readJson(resultPath)), cached: true };

    const prompts: SampledPrompt[] = [];
    for await (const { text } of readJsonlLines(samples.uri)) prompts.push(JSON.parse(text) as SampledPrompt);
    const partialPath = join(dir, 'scores.partial.jsonl');
    const done = await recoverPartial(partialPath, (x): x is ScoredPrompt => Array.isArray((x as ScoredPrompt | null)?.stepScores) && typeof (x as ScoredPrompt).id === 'string');
    const ctx = Context.current();
    const beat = () => ctx.heartbeat({ dataset: samples.dataset, shard: samples.shard, done: done.size, total: prompts.length } satisfies ShardHeartbeat);

    const prm = new PrmClient(input.prm);
    // Beats also while a request retries inside the client.
    await heartbeatWhile(beat, () =>
      runSlidingWindow(
        prompts.filter((p) => !done.has(p.id)),
        input.prm.maxConcurrency,
        async (p) => {
          ctx.cancellationSignal.throwIfAborted();
          const steps = p.responses.map((r) => splitSteps(r.text, input.steps));
          const items = steps.flatMap((s, j) => (s.length > 0 ? [{ id: `${p.id}/${j}`, question: p.question, steps: s }] : []));
          // All of a prompt's responses in one request: the server scores them in one batched pass.
          const scores = items.length > 0 ? await prm.score(items) : [];
          const byId = new Map(items.map((item, i) => [item.id, scores[i] as number[]]));
          const scored: ScoredPrompt = { id: p.id, stepScores: steps.map((_, j) => byId.get(`${p.id}/${j}`) ?? []) };
          await appendFile(partialPath, toJsonl([scored]));
          done.set(p.id, scored);
          beat();
        },
      ),
    );

    const lines = prompts.map((p) => done.get(p.id) as ScoredPrompt);
    const text = toJsonl(lines);
    const uri = join(dir, 'scores.jsonl');
    await writeFileAtomic(uri, text);
    const perResponse = lines.flatMap((l) => l.stepScores);
    const result: ScoreShardResult = {
      uri,
      count: lines.length,
      sha256: sha256(text),
      dataset: samples.dataset,
      shard: samples.shard,
      scored: perResponse.filter((s) => s.length > 0).length,
      empty: perResponse.filter((s) => s.length === 0).length,
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await rm(partialPath, { force: true });
    return result;
  });
}
