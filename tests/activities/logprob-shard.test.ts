// logprobShard with the real log-prob job and the shipped tiny policy on a handful of responses: the manifest, the
// file in the samples' order, the cache, and PRL labels built from it; a stand-in job for the failure classes; the
// job's input from a labels shard.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { jobInputLines, logprobShard, type LogprobHeartbeat, type LogprobShardInput } from '../../activities/logprob-shard.js';
import type { SampledPrompt } from '../../activities/sample-shard.js';
import { LogprobJobSettings, LogprobLine, LogprobShardResult, prlLabels, responseStepTokenEnds } from '../../core/prl.js';
import type { LabeledSolution } from '../../core/labeling.js';
import { PROMPT_PRESETS } from '../../core/prompts.js';
import type { SampleShardResult } from '../../core/raft.js';
import { sha256, toJsonl } from '../../store/files.js';
import { PYTHON } from '../helpers/temporal.js';

const POLICY = resolve('models/tinymath-policy');

let store: string;
beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'prm-raft-logprobs-'));
});

const prompts: SampledPrompt[] = [
  {
    id: 'tm-1',
    question: 'Ann has 3 pens and buys 4 more. How many pens does she have?',
    reference: '7',
    answerKind: 'tinymath',
    responses: [
      { index: 0, text: '3 + 4 = 7\n#### 7', finishReason: 'stop', extracted: '7', correct: true },
      { index: 1, text: '3 + 4 = 8\n#### 8', finishReason: 'stop', extracted: '8', correct: false },
    ],
  },
  {
    id: 'tm-2',
    question: 'A box holds 12 eggs. 5 break. How many are left?',
    reference: '7',
    answerKind: 'tinymath',
    responses: [
      { index: 0, text: '12 - 5 = 7\n#### 7', finishReason: 'stop', extracted: '7', correct: true },
      { index: 1, text: '12 - 5 = 7\n7 + 0 = 7\n#### 7', finishReason: 'stop', extracted: '7', correct: true },
    ],
  },
  // A prompt the server refused: no responses, nothing to score.
  { id: 'tm-3', question: 'x', reference: '1', answerKind: 'tinymath', responses: [], error: 'refused' },
];

async function inputWith(logprobs: LogprobJobSettings, checkpoint = POLICY): Promise<LogprobShardInput> {
  const text = toJsonl(prompts);
  const uri = join(store, 'samples.jsonl');
  await writeFile(uri, text);
  const samples: SampleShardResult = { uri, count: prompts.length, sha256: sha256(text), dataset: 'tinymath', shard: 0, prompts: 3, responses: 4, truncated: 0, refused: 1, correct: 3, cached: false };
  return {
    shard: samples,
    kind: 'samples',
    checkpoint,
    prompt: PROMPT_PRESETS.tinymath as LogprobShardInput['prompt'],
    logprobs,
    python: PYTHON,
    storeRoot: store,
  };
}

describe('logprobShard', () => {
  it('scores every response under the checkpoint, in the samples order, and reuses the finished shard', async () => {
    const input = await inputWith(LogprobJobSettings.parse({ device: 'cpu', batchTokens: 128, maxBatchSize: 2 }));
    const beats: LogprobHeartbeat[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: LogprobHeartbeat) => beats.push(d));
    const result: LogprobShardResult = await env.run(logprobShard, input);

    const texts = prompts.flatMap((p) => p.responses.map((r) => r.text));
    expect(LogprobShardResult.parse(result)).toMatchObject({ count: 4, responses: 4, dataset: 'tinymath', shard: 0, checkpoint: POLICY, cached: false });
    // The tiny policy's tokenizer is character-level: one token per character.
    expect(result.tokens).toBe(texts.reduce((n, t) => n + t.length, 0));
    expect(result.uri).toContain(`${store}/cache/logprobs/`);
    const body = await readFile(result.uri, 'utf8');
    expect(sha256(body)).toBe(result.sha256);
    const lines = body.trim().split('\n').map((l) => LogprobLine.parse(JSON.parse(l)));
    expect(lines.map((l) => l.id)).toEqual(['tm-1/0', 'tm-1/1', 'tm-2/0', 'tm-2/1']);
    for (const [i, l] of lines.entries()) {
      expect(l.char_ends).toEqual(Array.from({ length: (texts[i] as string).length }, (_, t) => t + 1));
      expect(l.logprobs.every((x) => x <= 0 && Number.isFinite(x))).toBe(true);
    }
    // Same prompt, same first line: the two responses of tm-2 share their first 11 tokens' log-probs.
    expect(lines[3]?.logprobs.slice(0, 11)).toEqual(lines[2]?.logprobs.slice(0, 11));
    expect(beats.at(-1)).toMatchObject({ step: 4, total: 4 });

    // Steps onto tokens, and PRL labels: scored against itself (π = π0) every step is the outcome.
    const l1 = lines[3] as LogprobLine;
    const stepEnds = responseStepTokenEnds(texts[3] as string, { by: 'newline' }, l1.char_ends, 'tm-2/1');
    expect(stepEnds).toEqual([11, 21, 27]);
    const labels = prlLabels({ id: l1.id, promptId: 'tm-2', stepEnds, logprobs: l1.logprobs, refLogprobs: l1.logprobs, outcome: 1 }, 2);
    expect(labels.stepValues).toEqual([1, 1, 1]);

    // Finished: the same shard under the same checkpoint is not computed again (the batch sizes do not matter).
    const again = await new MockActivityEnvironment().run(logprobShard, { ...input, logprobs: LogprobJobSettings.parse({ device: 'cpu' }) });
    expect(again).toEqual({ ...result, cached: true });
  });

  it('fails at once with the job message on bad input (exit 2) and retries a job that lost responses', async () => {
    const bad = await inputWith(LogprobJobSettings.parse({ command: ['bash', '-c', `echo 'input_file line 3: missing "completion"' >&2; exit 2`] }));
    const err = await new MockActivityEnvironment().run(logprobShard, bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('BadInput');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toMatch(/log-prob job rejected its config or data.*line 3: missing "completion"/);

    // A stand-in that writes one response of four and says done: not cached, retryable.
    const script = `out=$(sed -n 's/.*"output_file": "\\([^"]*\\)".*/\\1/p' "$1"); echo '{"id":"tm-1/0","logprobs":[-1],"char_ends":[1]}' > "$out"; echo "{\\"event\\":\\"done\\",\\"output\\":\\"$out\\"}"`;
    const short = await inputWith(LogprobJobSettings.parse({ command: ['bash', '-c', script, 'job', '{config}'] }));
    const err2 = await new MockActivityEnvironment().run(logprobShard, short).catch((e: unknown) => e);
    expect(err2).not.toBeInstanceOf(ApplicationFailure);
    expect((err2 as Error).message).toMatch(/finished without 3 of 4 responses \(first: tm-1\/1\)/);
  });

  it('refuses a checkpoint that is not a local transformers directory, as bad input, before any job runs', async () => {
    const input = await inputWith(LogprobJobSettings.parse({ command: ['bash', '-c', 'exit 1'] }), 'meta-math/MetaMath-Mistral-7B');
    const err = await new MockActivityEnvironment().run(logprobShard, input).catch((e: unknown) => e);
    expect((err as ApplicationFailure).type).toBe('BadInput');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toMatch(/PRL needs the policy's own log-probs, so meta-math\/MetaMath-Mistral-7B must be a local transformers checkpoint/);
  });

  it("takes a labels shard's solutions as the responses, named by their own ids", () => {
    const solution: LabeledSolution = {
      id: 'tm-1/3',
      problemId: 'tm-1',
      question: 'Ann has 3 pens and buys 4 more. How many pens does she have?',
      reference: '7',
      answerKind: 'tinymath',
      solution: '3 + 4 = 7\n#### 7',
      finishReason: 'stop',
      correct: true,
      steps: ['3 + 4 = 7', '#### 7'],
      counts: [{ k: 3, m: 4 }, { k: 1, m: 1 }],
    };
    const template = PROMPT_PRESETS.tinymath as LogprobShardInput['prompt'];
    expect(jobInputLines('labels', solution, template)).toEqual([
      { id: 'tm-1/3', prompt: `Question: ${solution.question}\nAnswer:\n`, completion: solution.solution },
    ]);
    expect(jobInputLines('samples', prompts[0], template).map((l) => l.id)).toEqual(['tm-1/0', 'tm-1/1']);
    expect(jobInputLines('samples', prompts[2], template)).toEqual([]);
  });
});
