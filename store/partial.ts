// Append-only progress files: what a crashed attempt finished, recovered by the next one.
import { readFile } from 'node:fs/promises';
import { exists, toJsonl, writeFileAtomic } from './files.js';

/**
 * Records a previous attempt already appended, by id. A line torn by a crash is dropped (that record is
 * redone) and the file rewritten whole, so the next append starts on a fresh line.
 */
export async function recoverPartial<T extends { id: string }>(path: string, isRecord: (x: unknown) => x is T): Promise<Map<string, T>> {
  const done = new Map<string, T>();
  if (!(await exists(path))) {
    await writeFileAtomic(path, '');
    return done;
  }
  const text = await readFile(path, 'utf8');
  for (const line of text.split('\n')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue; // The torn last line.
    }
    if (isRecord(parsed)) done.set(parsed.id, parsed);
  }
  if (text !== '' && !text.endsWith('\n')) await writeFileAtomic(path, toJsonl([...done.values()]));
  return done;
}
