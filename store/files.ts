// Files that appear whole or not at all: every stage output goes through here.
import type { ArtifactManifest } from '../core/manifests.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';

/** Write to a temporary name beside the target, then rename: readers never see half a file. Streams an iterable. */
export async function writeFileAtomic(path: string, data: string | Uint8Array | AsyncIterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function toJsonl(records: readonly unknown[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
}

/** Writes records as JSONL, atomically, and returns the artifact's manifest: where, how many, its sha256. */
export async function writeJsonlAtomic(path: string, records: readonly unknown[]): Promise<ArtifactManifest> {
  const text = toJsonl(records);
  await writeFileAtomic(path, text);
  return { uri: path, count: records.length, sha256: sha256(text) };
}

/** Each non-blank line of a JSONL file with its 1-based line number, streamed. */
export async function* readJsonlLines(path: string): AsyncGenerator<{ line: number; text: string }> {
  const input = createReadStream(path, 'utf8');
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line += 1;
      if (text.trim() !== '') yield { line, text };
    }
  } finally {
    // A caller that stops early must not leave the file open.
    lines.close();
    input.destroy();
  }
}

export async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A stable hash of a JSON value: object keys sorted, so key order never changes a cache key. */
export function contentKey(value: unknown): string {
  return sha256(canonicalJson(value)).slice(0, 24);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
