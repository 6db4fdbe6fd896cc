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
import { LogprobLine, prlLabels, prlResponse, prlResponseScore } from '../core/prl.js';
import { SelectionResult, type PrlIterationSettings, type RaftIterationInput, type SampleShardResult, type ScoreShardResult, type ShardLogprobs } from '../core/raft.js';
import { emptySelectionStats, mergeSelectionStats, selectionStatsOf, selectTopResponse, type Candidate } from '../core/selection.js';
import { contentKey, exists, readJson, readJsonlLines, toJsonl, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { responseId } from './logprob-shard.js';
import type { SampledPrompt } from './sample-shard.js';
import type { ScoredPrompt } from './score-shard.js';

export type SelectResponsesInput = Pick<RaftIterationInput, 'selection' | 'prompt' | 'storeRoot'> & {
  /** How step scores become a response's score; prm mode only. */
  aggregation?: Aggregation;
  /** PRL's settings; prl mode only. */
  prl?: PrlIterationSettings;
  /**
   * Each samples shard with its scores shard, in shard order; the baseline modes have no scores. In prl mode each
   * has its log-prob files instead (under the current policy, and under π0 unless π0 is the current policy).
   */
  shards: Array<{ samples: SampleShardResult; scores?: ScoreShardResult; logprobs?: ShardLogprobs }>;
};

export async function selectResponses(input: SelectResponsesInput): Promise<SelectionResult> {
  return withFailureClasses(async () => {
    if (input.selection.mode === 'prm' && (input.aggregation === undefined || input.shards.some((s) => s.scores === undefined))) {
      throw new BadInputError('selection.mode prm ranks by reward-model scores, but this selection was given no aggregation or a shard without scores');
    }
    if (input.selection.mode === 'prl' && (input.prl === undefined || input.shards.some((s) => s.logprobs === undefined))) {
      throw new BadInputError('selection.mode prl ranks by PRL values, but this selection was given no prl settings or a shard without log-probs');
    }
    const prl = input.selection.mode === 'prl' ? input.prl : undefined;
    const key = contentKey({
      v: 2,
      shards: input.shards.map((s) => [s.samples.sha256, s.scores?.sha256 ?? null]),
      aggregation: input.aggregation ?? null,
      selection: input.selection,
      prompt: input.prompt,
      // Only in prl mode, so every other mode keeps the key it had.
      ...(prl ? { prl: { eta: prl.eta, boundary: prl.boundary, steps: prl.steps, score: prl.score, ...(prl.minScore !== undefined ? { minScore: prl.minScore } : {}) }, logprobs: input.shards.map((s) => [s.logprobs?.current.sha256, s.logprobs?.initial?.sha256 ?? null]) } : {}),
    });
    const dir = cacheDir(input.storeRoot, 'selection', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...SelectionResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    let stats = emptySelectionStats();
    // Written shard by shard, so memory does not grow with the number of prompts.
    const sftOut = await jsonlOutput(dir, 'sft');
    const selectedOut = await jsonlOutput(dir, 'selected');
    for (const [i, { samples, scores, logprobs }] of input.shards.entries()) {
      const sft: Array<{ prompt: string; completion: string }> = [];
      const selected: unknown[] = [];
      const scoresById = new Map<string, number[][]>();
      if (scores) {
        for await (const { text } of readJsonlLines(scores.uri)) {
          const s = JSON.parse(text) as ScoredPrompt;
          scoresById.set(s.id, s.stepScores);
        }
      }
      const current = prl && logprobs ? await readLogprobs(logprobs.current.uri) : null;
      // π0 is the current policy: both sides are the same lines, and every PRL value is the outcome r.
      const initial = prl && logprobs ? (logprobs.initial ? await readLogprobs(logprobs.initial.uri) : current) : null;
      for await (const { text } of readJsonlLines(samples.uri)) {
        const p = JSON.parse(text) as SampledPrompt;
        const stepScores = scoresById.get(p.id) ?? [];
        const candidates: Candidate[] = p.responses.map((r, j) => ({
          index: r.index,
          finishReason: r.finishReason,
          // Unscored (a baseline mode, or a response without steps): NaN, written as a null score.
          score:
            prl && current && initial
              ? prlScore(prl, p, j, current, initial)
              : input.aggregation
                ? aggregateStepScores(stepScores[j] ?? [], input.aggregation)
                : Number.NaN,
          extracted: r.extracted,
          correct: r.correct,
        }));
        const outcome = selectTopResponse(candidates, input.selection, p.id, prl?.minScore);
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

/** A log-prob stage's file (activities/logprob-shard.ts) by response id. */
async function readLogprobs(uri: string): Promise<Map<string, LogprobLine>> {
  const byId = new Map<string, LogprobLine>();
  for await (const { line, text } of readJsonlLines(uri)) {
    const parsed = LogprobLine.safeParse(JSON.parse(text));
    if (!parsed.success) throw new BadInputError(`${uri}:${line}: not a log-prob line: ${parsed.error.issues[0]?.message}`);
    byId.set(parsed.data.id, parsed.data);
  }
  return byId;
}

/**
 * Response j's PRL score: the outcome r (1 right, 0 wrong, from grading) minus (1/η) times its log-ratio to π0, over
 * the whole response (`sequence`) or the minimum over its steps (`min-step`; NaN without steps: never selected).
 */
function prlScore(prl: PrlIterationSettings, p: SampledPrompt, j: number, current: Map<string, LogprobLine>, initial: Map<string, LogprobLine>): number {
  const r = p.responses[j];
  const id = responseId(p.id, j);
  const cur = current.get(id);
  const ini = initial.get(id);
  if (!r || !cur || !ini) throw new BadInputError(`response ${id} has no log-prob line under the ${cur ? 'initial' : 'current'} policy: the log-prob files are not this samples shard's`);
  const labels = prlLabels(prlResponse({ id, promptId: p.id, text: r.text, steps: prl.steps, outcome: r.correct ? 1 : 0, current: cur, initial: ini }), prl.eta, prl.boundary);
  return prlResponseScore(labels, prl.score) ?? Number.NaN;
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
