// prepareDataset: a raw file becomes normalized problems once; a bad line stops it with file:line and writes nothing.
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareDataset } from '../../activities/prepare-dataset.js';
import type { DatasetManifest } from '../../core/manifests.js';
import { ProblemRecord } from '../../core/records.js';

const fixture = 'tests/fixtures/datasets/gsm8k.jsonl';

async function prepare(path: string, storeRoot: string, limit?: number, format: 'raw' | 'normalized' = 'raw', skip?: number): Promise<DatasetManifest> {
  return new MockActivityEnvironment().run(prepareDataset, { dataset: { name: 'gsm8k-test', source: 'gsm8k' as const, path, skip, limit, format }, storeRoot });
}

describe('prepareDataset', () => {
  it('writes normalized problems with a manifest, honours the limit, and reuses its output', async () => {
    const store = await mkdtemp(join(tmpdir(), 'prm-raft-prep-'));
    const manifest = await prepare(fixture, store, 3);
    expect(manifest).toMatchObject({ name: 'gsm8k-test', source: 'gsm8k', count: 3 });
    const lines = (await readFile(manifest.uri, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(ProblemRecord.parse(JSON.parse(lines[0] as string)).answerKind).toBe('gsm8k');
    expect(await prepare(fixture, store, 3)).toEqual(manifest);
    expect((await prepare(fixture, store)).count).toBeGreaterThan(3);
  });

  it('skips the first problems, counts the limit after them, and refuses a skip that leaves none', async () => {
    const store = await mkdtemp(join(tmpdir(), 'prm-raft-prep-'));
    const all = (await readFile((await prepare(fixture, store)).uri, 'utf8')).trim().split('\n');
    const sliced = await prepare(fixture, store, 2, 'raw', 1);
    expect((await readFile(sliced.uri, 'utf8')).trim().split('\n')).toEqual(all.slice(1, 3));
    const err = await prepare(fixture, store, undefined, 'raw', all.length).catch((e: unknown) => e);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`no problems left in .*gsm8k\\.jsonl \\(${all.length} read, skip ${all.length}\\)`));
  });

  it('reads an already normalized file as it is, and rejects a raw one given as normalized', async () => {
    const store = await mkdtemp(join(tmpdir(), 'prm-raft-prep-'));
    const raw = await prepare(fixture, store);
    const again = await prepare(raw.uri, store, undefined, 'normalized');
    expect(await readFile(again.uri, 'utf8')).toBe(await readFile(raw.uri, 'utf8'));
    const err = await prepare(fixture, store, undefined, 'normalized').catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/gsm8k\.jsonl:1: not a normalized problem/);
  });

  it('fails without retry on a malformed line, naming file and line, and leaves nothing behind', async () => {
    const store = await mkdtemp(join(tmpdir(), 'prm-raft-prep-'));
    const bad = join(store, 'bad.jsonl');
    const good = (await readFile(fixture, 'utf8')).split('\n')[0];
    await writeFile(bad, `${good}\n${good}\n{"question": "q", "answer": "no final line"}\n`);
    const err = await prepare(bad, join(store, 'store')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toContain(`${bad}:3:`);
    expect(await readdir(store)).toEqual(['bad.jsonl']);
  });

  it('fails without retry on a missing file, saying where relative paths are read from', async () => {
    const err = await prepare('no/such.jsonl', await mkdtemp(join(tmpdir(), 'prm-raft-prep-'))).catch((e: unknown) => e);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toMatch(/no\/such\.jsonl not found \(relative paths are read from the worker's directory/);
  });
});
