// The PRM client against the real Python PRM server (the shipped tiny PRM) whose forward passes over 200 padded
// tokens fail as out of memory (its PRM_RAFT_PRM_FAULT test hook): the client splits a request down to single items.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PrmClient, TOO_LARGE_FOR_ONE_FORWARD, type PrmItem } from '../../clients/prm.js';
import { freePort } from '../../clients/ports.js';
import { BadInputError } from '../../core/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const QUESTION = 'Ann has 12 apples. She buys 7 more. She gives 5 to Bob. How many apples does Ann have now?';
// About 143 tokens each: one fits under the fake 200-token memory, two side by side (padded) do not.
const items: PrmItem[] = Array.from({ length: 8 }, (_, k) => ({
  id: `q1/${k}`,
  question: QUESTION,
  steps: [`12 + ${k} = ${12 + k}`, `${12 + k} - 5 = ${7 + k}`, `#### ${7 + k}`],
}));

let server: ChildProcess;
let url: string;
let log = '';

beforeAll(async () => {
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  server = spawn(
    `${root}python-sft/.venv/bin/python`,
    ['-m', 'prm_raft.prm_server', '--model', `${root}models/tinymath-prm`, '--port', String(port), '--threads', '1', '--served-model-name', 'tiny-prm'],
    { env: { ...process.env, PRM_RAFT_PRM_FAULT: 'oom-above-tokens:200' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  server.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const deadline = Date.now() + 150_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`the PRM server exited with ${server.exitCode}: ${log}`);
    const healthy = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (healthy) break;
    if (Date.now() > deadline) throw new Error(`the PRM server was not healthy in 150 s: ${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(() => {
  server?.kill('SIGTERM');
});

const client = () => new PrmClient({ model: 'tiny-prm', baseUrls: [url], kind: 'prm', requestTimeoutSeconds: 60, maxRetries: 2 });

/** The statuses of every request the client sends while `run` runs. */
async function statusesOf(run: () => Promise<unknown>): Promise<number[]> {
  const spy = vi.spyOn(globalThis, 'fetch');
  try {
    await run().catch(() => undefined);
    return await Promise.all(spy.mock.results.map(async (r) => ((await r.value) as Response).status));
  } finally {
    spy.mockRestore();
  }
}

describe('PrmClient against the PRM server out of memory', () => {
  it('splits a request in halves down to single items and returns the scores in item order', async () => {
    const alone: number[][] = [];
    for (const item of items) alone.push(...(await client().score([item])));
    let together: number[][] = [];
    const statuses = await statusesOf(async () => (together = await client().score(items)));
    // 8 -> 4 + 4 -> 2 + 2 + 2 + 2 -> eight single items: seven 507s, eight answers
    expect(statuses.filter((s) => s === TOO_LARGE_FOR_ONE_FORWARD)).toHaveLength(7);
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
    expect(together).toHaveLength(items.length);
    together.forEach((scores, i) => {
      expect(scores).toHaveLength(3);
      scores.forEach((s, j) => expect(s).toBeCloseTo(alone[i]?.[j] as number, 6));
    });
  });

  it('fails one item that does not fit alone as bad input, naming it and its token count, with no retry', async () => {
    const long = { id: 'long/1', question: QUESTION.repeat(3), steps: ['12 + 7 = 19'] };
    let err: unknown;
    const statuses = await statusesOf(async () => client().score([items[0] as PrmItem, long]).catch((e: unknown) => (err = e)));
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(/item "long\/1" does not fit in one forward pass.*item 'long\/1' \(\d+ tokens\)/);
    expect(statuses).toEqual([507, 200, 507]); // the pair, then each half once: a 507 is never retried as it is
  });
});
