// evaluateShard with a scripted policy server and the real math-verify grader: results, resume, cache, bad input.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { existsSync, writeFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { evaluateShard, type EvaluateShardInput } from '../../activities/evaluate-shard.js';
import { evaluatePolicyInputFromConfig } from '../../core/evaluation.js';
import type { ShardHeartbeat } from '../../core/evaluation.js';
import { cacheDir } from '../../core/layout.js';
import { EvalResultRecord, type EvalShardResult } from '../../core/manifests.js';
import { parseConfigText } from '../../core/parse-config.js';
import type { ProblemRecord } from '../../core/records.js';
import { contentKey, toJsonl } from '../../store/files.js';
import { completionBody, startStubServer, type StubServer } from '../helpers/stub-server.js';
import { PYTHON } from '../helpers/temporal.js';

const problems: ProblemRecord[] = Array.from({ length: 6 }, (_, i) => ({
  id: `t-${i}`,
  source: 'tinymath',
  question: `What is ${i} + ${i}?`,
  answer: String(2 * i),
  answerKind: 'tinymath',
}));

let store: string;
let server: StubServer;
let input: EvaluateShardInput;

/** Answers right for even i, wrong for odd i. */
function answer(prompt: string): string {
  const i = Number(/What is (\d+)/.exec(prompt)?.[1]);
  return `${i} + ${i} = ${2 * i}\n#### ${i % 2 === 0 ? 2 * i : 2 * i + 1}`;
}

beforeEach(async () => {
  store = await mkdtemp(join(tmpdir(), 'prm-raft-shard-'));
  server = await startStubServer((path, body) => {
    const b = body as { prompt: string[]; n: number };
    return { status: 200, body: completionBody(b.prompt, b.n, (p) => answer(p)) };
  });
  const parsed = parseConfigText(
    `name: t
policy: { model: m, baseUrls: ["${server.url}/v1"], promptsPerRequest: 2, maxConcurrency: 2, maxRetries: 0 }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: tiny, source: tinymath, path: unused }], maxTokens: 64 }
python: ${PYTHON}
store: { root: ${store} }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  const uri = join(store, 'problems.jsonl');
  await writeFile(uri, toJsonl(problems));
  input = {
    ...evaluatePolicyInputFromConfig(parsed.config),
    dataset: { name: 'tiny', source: 'tinymath', uri, count: problems.length, sha256: 'abc' },
    shard: { index: 0, start: 1, end: 6 },
    policyFingerprint: 'm@test',
  };
});

afterEach(async () => {
  await server.close();
});

async function runShard(i: EvaluateShardInput, beats: ShardHeartbeat[] = [], env = new MockActivityEnvironment()): Promise<EvalShardResult> {
  env.on('heartbeat', (d: ShardHeartbeat) => beats.push(d));
  return env.run(evaluateShard, i);
}

async function shardDir(): Promise<string> {
  const root = join(store, 'cache', 'eval-shards');
  const [key] = await readdir(root);
  return join(root, key as string);
}

describe('evaluateShard', () => {
  it('samples its slice greedily, grades it, and writes per-question results atomically', async () => {
    const beats: ShardHeartbeat[] = [];
    const result = await runShard(input, beats);
    expect(result).toMatchObject({ dataset: 'tiny', shard: 0, count: 5, tally: { total: 5, correct: 2 }, truncated: 0, cached: false });
    const records = (await readFile(result.uri, 'utf8')).trim().split('\n').map((l) => EvalResultRecord.parse(JSON.parse(l)));
    expect(records.map((r) => [r.id, r.extracted, r.correct])).toEqual([
      ['t-1', '3', false],
      ['t-2', '4', true],
      ['t-3', '7', false],
      ['t-4', '8', true],
      ['t-5', '11', false],
    ]);
    // Greedy, said explicitly, with the template's stop sequences.
    expect(server.requests[0]?.body).toMatchObject({ temperature: 0, top_p: 1, n: 1, max_tokens: 64, stop: ['\n\n', 'Question:'] });
    expect(server.requests).toHaveLength(3);
    expect(beats.at(-1)).toEqual({ dataset: 'tiny', shard: 0, done: 5, total: 5 });
    // Only the final files are left: no partial samples, no grader scratch, no temporary names.
    expect((await readdir(await shardDir())).sort()).toEqual(['result.json', 'results.jsonl']);
  });

  it('heartbeats while the grader runs', async () => {
    // The grader waits (at most 20 s) for a heartbeat sent after it started, then grades for real.
    const started = join(store, 'grading');
    const go = join(store, 'go');
    const grader = join(store, 'python');
    await writeFile(
      grader,
      `#!/bin/sh\ntouch '${started}'\ni=0\nwhile [ ! -e '${go}' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n` +
        `[ -e '${go}' ] || { echo 'no heartbeat while grading' >&2; exit 1; }\nexec '${PYTHON}' "$@"\n`,
    );
    await chmod(grader, 0o755);
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 400 });
    env.on('heartbeat', () => {
      if (existsSync(started)) writeFileSync(go, '');
    });
    const result = await runShard({ ...input, python: grader }, [], env);
    expect(result.tally).toEqual({ total: 5, correct: 2 });
  });

  it('reuses a finished shard without a single request', async () => {
    await runShard(input);
    const before = server.requests.length;
    const again = await runShard(input);
    expect(again.cached).toBe(true);
    expect(again.tally).toEqual({ total: 5, correct: 2 });
    expect(server.requests.length).toBe(before);
  });

  it('resumes after a crash: questions already sampled are not requested again, a torn line is', async () => {
    const key = contentKey({ v: 1, policy: 'm@test', prompt: input.prompt, maxTokens: 64, seed: 0, dataset: 'abc', start: 1, end: 6 });
    const dir = cacheDir(store, 'eval-shards', key);
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    await writeFile(
      join(dir, 'samples.partial.jsonl'),
      `${JSON.stringify({ id: 't-1', responses: [{ text: '#### 2', finishReason: 'stop' }] })}\n${JSON.stringify({ id: 't-2', responses: [{ text: '#### 4', finishReason: 'stop' }] })}\n{"id":"t-3","respo`,
    );
    const result = await runShard(input);
    const asked = server.requests.flatMap((r) => (r.body as { prompt: string[] }).prompt);
    expect(asked).toHaveLength(3);
    expect(asked.some((p) => p.includes('What is 1 +') || p.includes('What is 2 +'))).toBe(false);
    // t-1's earlier (right) answer is kept, so 3 of 5 are correct now.
    expect(result.tally).toEqual({ total: 5, correct: 3 });
  });

  it('records a prompt the server refuses, and answers its neighbours', async () => {
    await server.close();
    server = await startStubServer((_path, body) => {
      const b = body as { prompt: string[]; n: number };
      if (b.prompt.some((p) => p.includes('What is 3 +'))) return { status: 400, body: { error: { message: 'prompt is too long' } } };
      return { status: 200, body: completionBody(b.prompt, b.n, (p) => answer(p)) };
    });
    const result = await runShard({ ...input, policy: { ...input.policy, baseUrls: [`${server.url}/v1`] } });
    const records = (await readFile(result.uri, 'utf8')).trim().split('\n').map((l) => EvalResultRecord.parse(JSON.parse(l)));
    expect(records.map((r) => [r.id, r.finishReason])).toEqual([
      ['t-1', 'stop'],
      ['t-2', 'stop'],
      ['t-3', 'refused'],
      ['t-4', 'stop'],
      ['t-5', 'stop'],
    ]);
    expect(result.tally).toEqual({ total: 5, correct: 2 });
  });

  it('fails without retry, naming the server, when the policy server rejects the request', async () => {
    await server.close();
    server = await startStubServer(() => ({ status: 400, body: { error: { message: "model 'm' does not exist" } } }));
    const bad = { ...input, policy: { ...input.policy, baseUrls: [`${server.url}/v1`] } };
    const err = await runShard(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toContain(`${server.url}/v1 answered 400: model 'm' does not exist`);
  });
});
