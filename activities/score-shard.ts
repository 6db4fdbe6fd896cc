// Stage: PRM scores for every step of every response of a samples shard, one request per prompt; a response the PRM
// refuses is recorded unscored with the reason (never selected), and the shard fails only when it refuses them all.
import { Context } from '@temporalio/activity';
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PrmClient, PrmRefusal, type PrmItem } from '../clients/prm.js';
import { BadInputError } from '../core/errors.js';
import type { ShardHeartbeat } from '../core/evaluation.js';
import { cacheDir } from '../core/layout.js';
import { ScoreShardResult, type PrmEndpoint, type RaftIterationInput, type SampleShardResult } from '../core/raft.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { splitSteps } from '../core/steps.js';
import { contentKey, exists, readJson, readJsonlLines, toJsonl, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { recoverPartial } from '../store/partial.js';
import { withFailureClasses } from './failures.js';
import { heartbeatWhile } from './heartbeat.js';
import type { SampledPrompt } from './sample-shard.js';

export type ScoreShardInput = Pick<RaftIterationInput, 'steps' | 'storeRoot'> & { prm: PrmEndpoint; prmFingerprint: string; samples: SampleShardResult };

/** One line of a scores shard: per response, its step scores ([] when it has no steps or the PRM refused it). */
export interface ScoredPrompt {
  id: string;
  stepScores: number[][];
  /** The responses the PRM refused, by index, with its reason; absent when it refused none. */
  unscored?: Array<{ index: number; reason: string }>;
}

type ItemScore = { scores: number[] } | { refused: string };

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
    // A refused request is asked again one item at a time, so one over-long response leaves only itself unscored.
    const scoreItems = async (items: PrmItem[]): Promise<ItemScore[]> => {
      try {
        return (await prm.score(items)).map((scores) => ({ scores }));
      } catch (err) {
        if (!(err instanceof PrmRefusal)) throw err;
        if (items.length === 1) return [{ refused: err.message }];
        const alone: ItemScore[] = [];
        for (const item of items) alone.push(...(await scoreItems([item])));
        return alone;
      }
    };
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
          const scores = items.length > 0 ? await scoreItems(items) : [];
          const byId = new Map(items.map((item, i) => [item.id, scores[i] as ItemScore]));
          const of = (j: number) => byId.get(`${p.id}/${j}`);
          const unscored = steps.flatMap((_, j) => {
            const s = of(j);
            return s && 'refused' in s ? [{ index: j, reason: s.refused }] : [];
          });
          const scored: ScoredPrompt = {
            id: p.id,
            stepScores: steps.map((_, j) => {
              const s = of(j);
              return s && 'scores' in s ? s.scores : [];
            }),
            ...(unscored.length > 0 ? { unscored } : {}),
          };
          await appendFile(partialPath, toJsonl([scored]));
          done.set(p.id, scored);
          beat();
        },
      ),
    );

    const lines = prompts.map((p) => done.get(p.id) as ScoredPrompt);
    const refused = lines.flatMap((l) => l.unscored ?? []);
    const perResponse = lines.flatMap((l) => l.stepScores);
    const withSteps = perResponse.filter((s) => s.length > 0).length + refused.length;
    if (refused.length > 0 && refused.length === withSteps) {
      // Every response refused: the request itself is wrong (model, formatting, context), not the responses.
      throw new BadInputError(`the PRM refused every response of shard ${samples.dataset}/${samples.shard}: ${refused[0]?.reason}`);
    }
    const result: ScoreShardResult = {
      ...(await writeJsonlAtomic(join(dir, 'scores.jsonl'), lines)),
      dataset: samples.dataset,
      shard: samples.shard,
      scored: perResponse.filter((s) => s.length > 0).length,
      empty: perResponse.length - withSteps,
      unscored: refused.length,
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await rm(partialPath, { force: true });
    return result;
  });
}
