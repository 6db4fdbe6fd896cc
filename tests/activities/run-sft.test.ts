// runSft's process handling with stand-in jobs: exit codes become retry decisions, cancellation kills the tree.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSft, type RunSftInput, type SftHeartbeat } from '../../activities/run-sft.js';
import { SftConfig } from '../../core/config.js';
import { TransientError } from '../../core/errors.js';
import type { SftResult } from '../../core/raft.js';

async function inputWith(script: string): Promise<RunSftInput> {
  const store = await mkdtemp(join(tmpdir(), 'prm-raft-sft-'));
  const data = join(store, 'sft.jsonl');
  await writeFile(data, '{"prompt":"Q","completion":"A"}\n');
  return {
    base: join(store, 'base'),
    sftData: { uri: data, count: 1, sha256: `sha-${Math.random()}` },
    // A stand-in job: bash reading the same job.json a real one would.
    sft: SftConfig.parse({ command: ['bash', '-c', script, 'job', '{config}', '{output_dir}'] }),
    perDeviceBatchSize: 8,
    gradientAccumulationSteps: 1,
    python: 'python3',
    storeRoot: store,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runSft', () => {
  it('passes progress to heartbeats and returns the done event, then reuses the finished output', async () => {
    const input = await inputWith(
      `echo '{"event":"progress","step":1,"total":2,"loss":2.5}'; echo 'not json'; echo '{"event":"progress","step":2,"total":2,"loss":1.5}';` +
        ` mkdir -p "$2/final"; echo "{\\"event\\":\\"done\\",\\"output\\":\\"$2/final\\",\\"metrics\\":{\\"steps\\":2,\\"loss_first\\":2.5,\\"loss_last\\":1.5}}"`,
    );
    const beats: SftHeartbeat[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: SftHeartbeat) => beats.push(d));
    const result: SftResult = await env.run(runSft, input);
    expect(result).toMatchObject({ steps: 2, lossFirst: 2.5, lossLast: 1.5, perDeviceBatchSize: 8, cached: false });
    expect(result.checkpoint).toMatch(/\/final$/);
    expect(beats).toContainEqual({ step: 2, total: 2, loss: 1.5 });
    const job = JSON.parse(await readFile(join(result.checkpoint, '..', 'job.json'), 'utf8')) as Record<string, unknown>;
    expect(job).toMatchObject({ train_file: input.sftData.uri, per_device_batch_size: 8, gradient_accumulation_steps: 1, method: 'full' });
    const again: SftResult = await new MockActivityEnvironment().run(runSft, input);
    expect(again).toMatchObject({ cached: true, checkpoint: result.checkpoint });
  });

  it.each([
    [2, 'BadInput', true, /rejected its config or data.*line 3: missing "completion"/],
    [3, 'OutOfMemory', true, /out of GPU memory at per-device batch 8/],
  ])('turns exit code %i into a non-retryable %s failure with the job message', async (code, type, nonRetryable, message) => {
    const input = await inputWith(`echo 'train_file line 3: missing "completion"' >&2; exit ${code}`);
    const err = await new MockActivityEnvironment().run(runSft, input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe(type);
    expect((err as ApplicationFailure).nonRetryable).toBe(nonRetryable);
    expect((err as Error).message).toMatch(message);
  });

  it('reads out-of-memory from the marker file when a launcher reports exit 1', async () => {
    const input = await inputWith(`echo '{"kind":"out_of_memory"}' > "$2/failure.json"; echo 'rank 3 failed' >&2; exit 1`);
    const err = await new MockActivityEnvironment().run(runSft, input).catch((e: unknown) => e);
    expect((err as ApplicationFailure).type).toBe('OutOfMemory');
  });

  it('leaves a crash retryable', async () => {
    const err = await new MockActivityEnvironment().run(runSft, await inputWith('echo boom >&2; exit 1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain('boom');
  });

  it('kills the job and everything it started when cancelled', async () => {
    const input = await inputWith('sleep 300 & echo $! > "$2.pids"; sleep 300 & echo $! >> "$2.pids"; echo $$ >> "$2.pids"; wait');
    const env = new MockActivityEnvironment();
    const running = env.run(runSft, input).catch((e: unknown) => e);
    const pidFile = async () => {
      const { readdir } = await import('node:fs/promises');
      const root = join(input.storeRoot, 'cache', 'sft');
      const [key] = await readdir(root).catch(() => [] as string[]);
      return key ? join(root, `${key}.pids`) : null;
    };
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length < 3; i += 1) {
      await new Promise((r) => setTimeout(r, 100));
      const path = await pidFile();
      if (path) pids = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    }
    expect(pids).toHaveLength(3);
    expect(pids.every(alive)).toBe(true);
    env.cancel();
    expect(String(await running)).toMatch(/Cancel/);
    for (let i = 0; i < 100 && pids.some(alive); i += 1) await new Promise((r) => setTimeout(r, 100));
    expect(pids.filter(alive)).toEqual([]);
  });
});
