// Stage: the top-ranked response per prompt becomes the SFT set; the stats say how good the pick was.
import { Context } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aggregateStepScores } from '../core/aggregate.js';
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
  aggregation: RaftIterationInput['prm']['aggregation'];
  /** Pairs of a samples shard and its scores shard, in shard order. */
  shards: Array<{ samples: SampleShardResult; scores: ScoreShardResult }>;
};

export async function selectResponses(input: SelectResponsesInput): Promise<SelectionResult> {
  return withFailureClasses(async () => {
    const key = contentKey({
      v: 1,
      shards: input.shards.map((s) => [s.samples.sha256, s.scores.sha256]),
      aggregation: input.aggregation,
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
      for await (const { text } of readJsonlLines(scores.uri)) {
        const s = JSON.parse(text) as ScoredPrompt;
        scoresById.set(s.id, s.stepScores);
      }
      for await (const { text } of readJsonlLines(samples.uri)) {
        const p = JSON.parse(text) as SampledPrompt;
        const stepScores = scoresById.get(p.id) ?? [];
        const candidates: Candidate[] = p.responses.map((r, j) => ({
          index: r.index,
          finishReason: r.finishReason,
          score: aggregateStepScores(stepScores[j] ?? [], input.aggregation),
          extracted: r.extracted,
          correct: r.correct,
        }));
        const outcome = selectTopResponse(candidates, input.selection);
        stats = mergeSelectionStats(stats, selectionStatsOf(candidates, outcome));
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
