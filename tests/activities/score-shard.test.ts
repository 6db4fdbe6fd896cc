// scoreShard against a scripted PRM server: heartbeats while the client retries, and responses the server refuses.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SampledPrompt } from '../../activities/sample-shard.js';
import { scoreShard, type ScoredPrompt, type ScoreShardInput } from '../../activities/score-shard.js';
import type { ScoreShardResult } from '../../core/raft.js';
import { sha256, toJsonl } from '../../store/files.js';
import { startStubServer, type StubHandler, type StubServer } from '../helpers/stub-server.js';

type Items = Array<{ id: string; steps: string[] }>;

let store: string;
let server: StubServer | undefined;

beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'prm-raft-score-'));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Scores every step 0.5. */
const scores = (items: Items) => ({ status: 200, body: { model: 'p', scores: items.map((i) => ({ id: i.id, step_scores: i.steps.map(() => 0.5) })) } });

/** A samples shard of prompts whose responses are the given texts (one step a line). */
async function shardInput(responses: Record<string, string[]>, handler: StubHandler, maxRetries = 0): Promise<ScoreShardInput> {
  server = await startStubServer(handler);
  const prompts: SampledPrompt[] = Object.entries(responses).map(([id, texts]) => ({
    id,
    question: `question ${id}`,
    reference: '4',
    answerKind: 'tinymath',
    responses: texts.map((text, index) => ({ index, text, finishReason: 'stop', extracted: '4', correct: true })),
  }));
  const text = toJsonl(prompts);
  const uri = join(store, 'samples.jsonl');
  await writeFile(uri, text);
  const count = prompts.flatMap((p) => p.responses).length;
  return {
    prm: { model: 'p', baseUrls: [server.url], kind: 'prm', aggregation: 'min', maxConcurrency: 1, requestTimeoutSeconds: 5, maxRetries },
    steps: { by: 'newline' },
    storeRoot: store,
    prmFingerprint: 'p@test',
    samples: { uri, count: prompts.length, sha256: sha256(text), dataset: 'd', shard: 0, prompts: prompts.length, responses: count, truncated: 0, refused: 0, correct: count, cached: false },
  };
}


describe('scoreShard', () => {
  it('heartbeats while the PRM client waits to retry a failing request, which then succeeds', async () => {
    // The server fails until the shard has heartbeated twice since its first request: a shard that beat only on
    // progress would use up the client's retries first.
    let asked = false;
    let beatsSinceAsked = 0;
    const input = await shardInput({ a: ['1 + 1 = 2\n2 + 2 = 4'] }, (_p, body) => {
      asked = true;
      return beatsSinceAsked >= 2 ? scores((body as { items: Items }).items) : { status: 503, body: { error: { message: 'busy' } } };
    }, 3);
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 400 });
    env.on('heartbeat', () => {
      if (asked) beatsSinceAsked += 1;
    });
    const result = await env.run(scoreShard, input);
    expect(result).toMatchObject({ scored: 1, empty: 0 });
    expect(server?.requests.length).toBeGreaterThan(1);
  });

  /** Refuses (400, as vLLM does over its context) every request holding a step that says LONG; scores the rest 0.5. */
  const refuseLong = (_p: string, body: unknown) => {
    const items = (body as { items: Items }).items;
    return items.some((i) => i.steps.some((step) => step.includes('LONG')))
      ? { status: 400, body: { error: { message: "This model's maximum context length is 4096 tokens." } } }
      : scores(items);
  };

  it('scores the other responses of a prompt the PRM refused one at a time, and records the refused one unscored with its reason', async () => {
    const input = await shardInput({ a: ['1 + 1 = 2\n2 + 2 = 4', 'LONG', ''], b: ['3 + 1 = 4'] }, refuseLong);
    const result = (await new MockActivityEnvironment().run(scoreShard, input)) as ScoreShardResult;
    expect(result).toMatchObject({ scored: 2, empty: 1, unscored: 1 });
    const lines = (await readFile(result.uri, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as ScoredPrompt);
    expect(lines).toEqual([
      { id: 'a', stepScores: [[0.5, 0.5], [], []], unscored: [{ index: 1, reason: expect.stringContaining("answered 400: This model's maximum context length") }] },
      { id: 'b', stepScores: [[0.5]] },
    ]);
  });

  it('fails the shard when the PRM refuses every response', async () => {
    const input = await shardInput({ a: ['LONG 1'], b: ['LONG 2'] }, refuseLong);
    const err = await new MockActivityEnvironment().run(scoreShard, input).catch((e: unknown) => e);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toContain('the PRM refused every response of shard d/0');
  });

  it('fails the shard on a reply that breaks the protocol, never calling it unscored', async () => {
    const input = await shardInput({ a: ['1 + 1 = 2'], b: ['3 + 1 = 4'] }, (_p, body) => ({
      status: 200,
      body: { model: 'p', scores: (body as { items: Items }).items.map((i) => ({ id: i.id, step_scores: i.steps.map(() => 1.5) })) },
    }));
    const err = await new MockActivityEnvironment().run(scoreShard, input).catch((e: unknown) => e);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toContain('off the protocol');
  });
});
