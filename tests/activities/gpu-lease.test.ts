// One GPU per worker: a server started on the gpu queue holds it after its activity returned, so an SFT job on the
// same worker (its queue has one slot, already free again) waits until the server is stopped or gone.
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GpuLease, gpuLease } from '../../activities/gpu-lease.js';
import { runSft, type SftHeartbeat } from '../../activities/run-sft.js';
import { createServingActivities } from '../../activities/serve-policy.js';
import { ServingConfig, SftConfig } from '../../core/config.js';
import type { ServedPolicy, SftResult } from '../../core/raft.js';

const STUB_SERVER = "require('http').createServer((q, r) => r.end('ok')).listen(Number(process.argv[1]), '127.0.0.1')";

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('GpuLease', () => {
  it('lets one holder in at a time, tells the waiter who holds it, and frees a server whose process is gone', async () => {
    const lease = new GpuLease();
    await lease.acquire('first');
    const seen: string[] = [];
    let second = false;
    const waiting = lease.acquire('second', { pollMs: 10, onWait: (h) => seen.push(h.what) }).then(() => (second = true));
    await until(() => seen.length > 2);
    expect(second).toBe(false);
    expect(seen[0]).toBe('first');
    lease.release();
    await waiting;
    expect(lease.current()?.what).toBe('second');

    lease.handOver(2 ** 22 + 12345); // a pid no process has: its claim lapses at the next look
    lease.release(1); // a stop for another server changes nothing
    expect(lease.current()?.what).toBe('second');
    await lease.acquire('third', { pollMs: 10 });
    expect(lease.current()?.what).toBe('third');
  });

  it('stops waiting when cancelled', async () => {
    const lease = new GpuLease();
    await lease.acquire('held');
    const ctl = new AbortController();
    const waiting = lease.acquire('waiter', { signal: ctl.signal, pollMs: 10 });
    ctl.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    expect(lease.current()?.what).toBe('held');
  });
});

describe('GPU stages on one worker', () => {
  it('an SFT job waits for a running policy server to be stopped, saying what it waits for', async () => {
    const store = await mkdtemp(join(tmpdir(), 'prm-raft-gpu-'));
    const data = join(store, 'sft.jsonl');
    await writeFile(data, '{"prompt":"Q","completion":"A"}\n');
    const started = join(store, 'sft-started');
    const serving = createServingActivities('own-queue');

    const served: ServedPolicy = await new MockActivityEnvironment().run(serving.startPolicyServer, {
      checkpoint: join(store, 'ckpt'),
      model: 'm',
      serving: ServingConfig.parse({ command: ['node', '-e', STUB_SERVER, '{port}'], startupTimeoutSeconds: 30 }),
      python: 'python3',
      storeRoot: store,
    });
    expect(gpuLease.current()).toMatchObject({ pid: served.pid });

    const beats: SftHeartbeat[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: SftHeartbeat) => beats.push(d));
    let finished = false;
    const sft = (
      env.run(runSft, {
        base: join(store, 'base'),
        sftData: { uri: data, count: 1, sha256: 'sha-gpu-lease' },
        sft: SftConfig.parse({
          command: ['bash', '-c', `touch ${started}; mkdir -p "$1/final"; echo "{\\"event\\":\\"done\\",\\"output\\":\\"$1/final\\"}"`, 'job', '{output_dir}'],
        }),
        perDeviceBatchSize: 8,
        gradientAccumulationSteps: 1,
        python: 'python3',
        storeRoot: store,
      }) as Promise<SftResult>
    ).then((r) => {
      finished = true;
      return r;
    });

    await until(() => beats.some((b) => b.waitingFor !== undefined));
    expect(beats.find((b) => b.waitingFor)?.waitingFor).toBe(`the GPU, held by policy server for ${join(store, 'ckpt')}`);
    await new Promise((r) => setTimeout(r, 1500)); // a few more polls: still waiting, the job not started
    expect(finished).toBe(false);
    expect(existsSync(started)).toBe(false);

    await new MockActivityEnvironment().run(serving.stopPolicyServer, { pid: served.pid });
    const result: SftResult = await sft;
    expect(existsSync(started)).toBe(true);
    expect(result.checkpoint).toMatch(/\/final$/);
    expect(gpuLease.current()).toBeNull();
  }, 30_000);
});
