// Stage: one response per prompt becomes the SFT set; the stats say how good the pick was against the baselines.
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregateStepScores, type Aggregation } from '../core/aggregate.js';
import { BadInputError } from '../core/errors.js';
import { cacheDir } from '../core/layout.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { renderPrompt } from '../core/prompts.js';
import { SelectionResult, type RaftIterationInput, type SampleShardResult, type ScoreShardResult } from '../core/raft.js';
import { emptySelectionStats, mergeSelectionStats, selectionStatsOf, selectTopResponse, type Candidate } from '../core/selection.js';
import { contentKey, exists, readJson, readJsonlLines, toJsonl, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import type { SampledPrompt } from './sample-shard.js';
import type { ScoredPrompt } from './score-shard.js';

export type SelectResponsesInput = Pick<RaftIterationInput, 'selection' | 'prompt' | 'storeRoot'> & {
  /** How step scores become a response's score; prm mode only. */
  aggregation?: Aggregation;
  /** Each samples shard with its scores shard, in shard order; the baseline modes have no scores. */
  shards: Array<{ samples: SampleShardResult; scores?: ScoreShardResult }>;
};

export async function selectResponses(input: SelectResponsesInput): Promise<SelectionResult> {
  return withFailureClasses(async () => {
    if (input.selection.mode === 'prm' && (input.aggregation === undefined || input.shards.some((s) => s.scores === undefined))) {
      throw new BadInputError('selection.mode prm ranks by reward-model scores, but this selection was given no aggregation or a shard without scores');
    }
    const key = contentKey({
      v: 2,
      shards: input.shards.map((s) => [s.samples.sha256, s.scores?.sha256 ?? null]),
      aggregation: input.aggregation ?? null,
      selection: input.selection,
      prompt: input.prompt,
    });
    const dir = cacheDir(input.storeRoot, 'selection', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...SelectionResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    let stats = emptySelectionStats();
    // Written shard by shard, so memory does not grow with the number of prompts.
    const sftOut = await jsonlOutput(dir, 'sft');
    const selectedOut = await jsonlOutput(dir, 'selected');
    for (const [i, { samples, scores }] of input.shards.entries()) {
      const sft: Array<{ prompt: string; completion: string }> = [];
      const selected: unknown[] = [];
      const scoresById = new Map<string, number[][]>();
      if (scores) {
        for await (const { text } of readJsonlLines(scores.uri)) {
          const s = JSON.parse(text) as ScoredPrompt;
          scoresById.set(s.id, s.stepScores);
        }
      }
      for await (const { text } of readJsonlLines(samples.uri)) {
        const p = JSON.parse(text) as SampledPrompt;
        const stepScores = scoresById.get(p.id) ?? [];
        const candidates: Candidate[] = p.responses.map((r, j) => ({
          index: r.index,
          finishReason: r.finishReason,
          // Unscored (a baseline mode, or a response without steps): NaN, written as a null score.
          score: input.aggregation ? aggregateStepScores(stepScores[j] ?? [], input.aggregation) : Number.NaN,
          extracted: r.extracted,
          correct: r.correct,
        }));
        const outcome = selectTopResponse(candidates, input.selection, p.id);
        stats = mergeSelectionStats(stats, selectionStatsOf(candidates, outcome, input.selection));
        const best = outcome.selected;
        if (!best) continue;
        sft.push({ prompt: renderPrompt(input.prompt, p.question), completion: p.responses[best.index]?.text ?? '' });
        selected.push({ id: p.id, index: best.index, score: Number.isNaN(best.score) ? null : best.score, correct: best.correct, extracted: best.extracted });
      }
      await sftOut.append(sft);
      await selectedOut.append(selected);
      ctx.heartbeat({ shardsDone: i + 1, shardsTotal: input.shards.length });
    }
    const result: SelectionResult = { sftData: await sftOut.close(), selected: await selectedOut.close(), stats, cached: false };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    return result;
  });
}

/** `NAME.jsonl` in `dir`, appended to under a scratch name and hashed as it grows; `close` renames it into place whole. */
async function jsonlOutput(dir: string, name: string) {
  const uri = join(dir, `${name}.jsonl`);
  const scratch = join(dir, `${name}.partial.jsonl`);
  await mkdir(dir, { recursive: true });
  // Truncated first: lines left by an attempt that died are not this attempt's.
  await writeFile(scratch, '');
  const hash = createHash('sha256');
  let count = 0;
  return {
    async append(records: readonly unknown[]): Promise<void> {
      const text = toJsonl(records);
      hash.update(text);
      count += records.length;
      await appendFile(scratch, text);
    },
    async close(): Promise<ArtifactManifest> {
      await rename(scratch, uri);
      return { uri, count, sha256: hash.digest('hex') };
    },
  };
}
