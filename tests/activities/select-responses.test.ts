// selectResponses over two shards of samples and scores: the files it writes, their manifests, the cache.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { SampledPrompt } from '../../activities/sample-shard.js';
import type { ScoredPrompt } from '../../activities/score-shard.js';
import { selectResponses, type SelectResponsesInput } from '../../activities/select-responses.js';
import { PROMPT_PRESETS } from '../../core/prompts.js';
import type { SelectionResult } from '../../core/raft.js';
import { sha256, toJsonl } from '../../store/files.js';

let store: string;
let input: SelectResponsesInput;

const run = (i: SelectResponsesInput): Promise<SelectionResult> => new MockActivityEnvironment().run(selectResponses, i);

function sampled(id: string, texts: string[], extracted: Array<string | null> = texts.map(() => '4')): SampledPrompt {
  return {
    id,
    question: `question ${id}`,
    reference: '4',
    answerKind: 'tinymath',
    responses: texts.map((text, index) => ({ index, text, finishReason: 'stop', extracted: extracted[index] ?? null, correct: extracted[index] === '4' })),
  };
}

/** A samples shard and its scores shard, as files with their manifests. */
async function shard(index: number, prompts: SampledPrompt[], scores: ScoredPrompt[]): Promise<SelectResponsesInput['shards'][number]> {
  const samplesText = toJsonl(prompts);
  const scoresText = toJsonl(scores);
  const samplesUri = join(store, `samples-${index}.jsonl`);
  const scoresUri = join(store, `scores-${index}.jsonl`);
  await writeFile(samplesUri, samplesText);
  await writeFile(scoresUri, scoresText);
  const responses = prompts.flatMap((p) => p.responses);
  return {
    samples: { uri: samplesUri, count: prompts.length, sha256: sha256(samplesText), dataset: 'd', shard: index, prompts: prompts.length, responses: responses.length, truncated: 0, refused: 0, correct: responses.filter((r) => r.correct).length, cached: false },
    scores: { uri: scoresUri, count: scores.length, sha256: sha256(scoresText), dataset: 'd', shard: index, scored: responses.length, empty: 0, cached: false },
  };
}

beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'prm-raft-select-'));
  input = {
    selection: { mode: 'prm', seed: 0, dropNoAnswer: true, dropTruncated: true },
    prompt: PROMPT_PRESETS.tinymath!,
    storeRoot: store,
    aggregation: 'min',
    shards: [
      await shard(
        0,
        [sampled('a', ['a0', 'a1']), sampled('b', ['b0', 'b1'], [null, null])],
        [
          { id: 'a', stepScores: [[0.9, 0.2], [0.5, 0.6]] },
          { id: 'b', stepScores: [[0.9], [0.8]] },
        ],
      ),
      await shard(1, [sampled('c', ['c0', 'c1'], ['4', '5'])], [{ id: 'c', stepScores: [[0.7], [0.7]] }]),
    ],
  };
});

describe('selectResponses', () => {
  it('writes one SFT pair and one selection line per kept prompt, in shard order, with their hashes', async () => {
    const result = await run(input);
    const sft = toJsonl([
      { prompt: 'Question: question a\nAnswer:\n', completion: 'a1' },
      { prompt: 'Question: question c\nAnswer:\n', completion: 'c0' },
    ]);
    const selected = toJsonl([
      { id: 'a', index: 1, score: 0.5, correct: true, extracted: '4' },
      { id: 'c', index: 0, score: 0.7, correct: true, extracted: '4' },
    ]);
    expect(await readFile(result.sftData.uri, 'utf8')).toBe(sft);
    expect(await readFile(result.selected.uri, 'utf8')).toBe(selected);
    expect(result.sftData).toMatchObject({ count: 2, sha256: sha256(sft) });
    expect(result.selected).toMatchObject({ count: 2, sha256: sha256(selected) });
    // Baselines on the same samples: a: both right; b: no answers; c: one of two right, a 1–1 tie won by "4".
    expect(result.stats).toMatchObject({ prompts: 3, kept: 2, selectedCorrect: 2, promptsWithACorrectResponse: 2, randomExpectedCorrect: 1.5, majorityCorrect: 2, rejected: { 'no-answer': 2 } });
    expect((await readdir(dirname(result.sftData.uri))).sort()).toEqual(['result.json', 'selected.jsonl', 'sft.jsonl']);

    const again = await run(input);
    expect(again).toEqual({ ...result, cached: true });
  });

  it('selects without scores in a baseline mode, writing null scores, each mode in its own cache entry', async () => {
    const unscored = input.shards.map(({ samples }) => ({ samples }));
    const majority = await run({ ...input, selection: { ...input.selection, mode: 'majority' }, aggregation: undefined, shards: unscored });
    expect(await readFile(majority.selected.uri, 'utf8')).toBe(
      toJsonl([
        { id: 'a', index: 0, score: null, correct: true, extracted: '4' },
        { id: 'c', index: 0, score: null, correct: true, extracted: '4' },
      ]),
    );
    expect(majority.stats).toMatchObject({ kept: 2, scored: 0, minSelectedScore: null, selectedCorrect: 2, majorityCorrect: 2, randomExpectedCorrect: 1.5 });

    const random = await run({ ...input, selection: { ...input.selection, mode: 'random', seed: 3 }, aggregation: undefined, shards: unscored });
    expect(random.selected.uri).not.toBe(majority.selected.uri);
    expect(random.stats).toMatchObject({ kept: 2, scored: 0, majorityCorrect: 2, randomExpectedCorrect: 1.5 });
    const again = await run({ ...input, selection: { ...input.selection, mode: 'random', seed: 3 }, aggregation: undefined, shards: unscored });
    expect(again).toEqual({ ...random, cached: true });
  });

  it('refuses prm mode without scores, as bad input', async () => {
    const error = await run({ ...input, shards: input.shards.map(({ samples }) => ({ samples })) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    expect((error as Error).message).toContain('selection.mode prm ranks by reward-model scores');
  });

  it('writes empty files when no prompt keeps a response', async () => {
    const shards = [await shard(2, [sampled('d', ['d0'], [null])], [{ id: 'd', stepScores: [[0.9]] }])];
    const none = await run({ ...input, shards });
    expect(await readFile(none.sftData.uri, 'utf8')).toBe('');
    expect(await readFile(none.selected.uri, 'utf8')).toBe('');
    expect(none.sftData).toMatchObject({ count: 0, sha256: sha256('') });
    expect(none.selected).toMatchObject({ count: 0, sha256: sha256('') });
    expect(none.stats).toMatchObject({ prompts: 1, kept: 0 });
  });
});
