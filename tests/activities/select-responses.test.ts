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
import { LogprobJobSettings } from '../../core/prl.js';
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

  it('ranks by PRL values from the log-prob files in prl mode: r − (1/η)·ln π/π0, and r alone when π0 is the current policy', async () => {
    // Prompt e: two right answers and a wrong one. The policy drifted from π0 on e0 (log-ratio +1.5) and not on e1.
    const prompts = [sampled('e', ['2\n4', '1\n4', '3\n5'], ['4', '4', '5'])];
    const samplesText = toJsonl(prompts);
    const samplesUri = join(store, 'samples-prl.jsonl');
    await writeFile(samplesUri, samplesText);
    const samples = { uri: samplesUri, count: 1, sha256: sha256(samplesText), dataset: 'd', shard: 0, prompts: 1, responses: 3, truncated: 0, refused: 0, correct: 2, cached: false };
    // The stage's files: one line per response in the samples' order, one token per character here.
    const logprobFile = async (name: string, lps: number[][]) => {
      const text = toJsonl(lps.map((logprobs, j) => ({ id: `e/${j}`, logprobs, char_ends: [1, 2, 3] })));
      const uri = join(store, `${name}.jsonl`);
      await writeFile(uri, text);
      return { uri, count: 3, sha256: sha256(text), dataset: 'd', shard: 0, checkpoint: `/${name}`, responses: 3, tokens: 9, cached: false };
    };
    const current = await logprobFile('pi', [[-0.5, -0.5, -0.5], [-1, -1, -1], [-0.1, -0.1, -0.1]]);
    const initial = await logprobFile('pi0', [[-1, -1, -1], [-1, -1, -1], [-1, -1, -1]]);
    const prl = { eta: 1, boundary: 'after-step' as const, steps: { by: 'newline' as const }, score: 'sequence' as const, logprobs: LogprobJobSettings.parse({}) };
    const base: SelectResponsesInput = { ...input, selection: { ...input.selection, mode: 'prl' }, aggregation: undefined, prl, shards: [{ samples, logprobs: { current, initial } }] };

    const lines = async (r: SelectionResult) => (await readFile(r.selected.uri, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { index: number; score: number });
    const ranked = await run(base);
    // e0: 1 − 1.5 = −0.5; e1: 1 − 0 = 1; e2: 0 − 2.7.
    expect(await lines(ranked)).toEqual([expect.objectContaining({ index: 1, score: 1 })]);
    expect(ranked.stats).toMatchObject({ kept: 1, scored: 1, scoreSum: 1, selectedCorrect: 1, promptsWithACorrectResponse: 1, majorityCorrect: 1 });
    // min-step: e0's steps are worth 1 − 0.5 (after "2\n") and 1; e1's 1 and 1.
    const minStep = await run({ ...base, prl: { ...prl, score: 'min-step' } });
    expect(await lines(minStep)).toEqual([expect.objectContaining({ index: 1, score: 1 })]);
    // π0 is the current policy (no second file): every value is the outcome, and the tie goes to the lowest index.
    const same = await run({ ...base, shards: [{ samples, logprobs: { current } }] });
    expect(await lines(same)).toEqual([expect.objectContaining({ index: 0, score: 1 })]);
    // A larger η weighs the drift less: e0 at η = 1000 is 1 − 0.0015, still below e1.
    const weak = await run({ ...base, prl: { ...prl, eta: 1000 } });
    expect((await lines(weak))[0]?.index).toBe(1);
    // minScore drops a prompt whose top value is below it (e1's 1 passes 0.5, not 1.5), and is part of the key.
    const kept = await run({ ...base, prl: { ...prl, minScore: 0.5 } });
    expect(await lines(kept)).toEqual([expect.objectContaining({ index: 1, score: 1 })]);
    const dropped = await run({ ...base, prl: { ...prl, minScore: 1.5 } });
    expect(dropped.stats).toMatchObject({ kept: 0, rejected: { 'below-min-score': 1 } });
    expect(new Set([ranked, minStep, same, weak, kept, dropped].map((r) => dirname(r.selected.uri))).size).toBe(6);

    const error = await run({ ...base, shards: [{ samples }] }).catch((e: unknown) => e);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    expect((error as Error).message).toContain('selection.mode prl ranks by PRL values');
    const foreign = await logprobFile('other', [[-1, -1, -1]]);
    const wrong = await run({ ...base, shards: [{ samples, logprobs: { current: foreign, initial } }] }).catch((e: unknown) => e);
    expect((wrong as Error).message).toMatch(/response e\/1 has no log-prob line under the current policy/);
  });
});
