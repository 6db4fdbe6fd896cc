// Reading dataset files: streamed records, ids, blank lines, and errors that name the file and line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetLineError } from '../../core/datasets.js';
import { BadInputError } from '../../core/errors.js';
import { readProblems, streamProblems } from '../../store/dataset-files.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/datasets', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataset-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readProblems', () => {
  it('reads every fixture dataset', async () => {
    const counts = await Promise.all(
      (['gsm8k', 'math', 'math500', 'omi2', 'tinymath'] as const).map(
        async (source) => (await readProblems(join(FIXTURES, `${source}.jsonl`), source)).length,
      ),
    );
    expect(counts).toEqual([5, 5, 5, 11, 3]);
  });

  it('prefixes derived ids with the dataset name', async () => {
    const problems = await readProblems(join(FIXTURES, 'gsm8k.jsonl'), 'gsm8k', { name: 'gsm8k-test' });
    expect(problems.map((p) => p.id)).toEqual(['gsm8k-test-0', 'gsm8k-test-1', 'gsm8k-test-2', 'gsm8k-test-3', 'gsm8k-test-4']);
    expect(problems[4]?.answer).toBe('2125');
  });

  it('skips blank lines without shifting ids, and reads CRLF files and a byte-order mark', async () => {
    const path = join(dir, 'crlf.jsonl');
    const line = (n: number) => JSON.stringify({ question: `q${n}`, answer: `a\n#### ${n}` });
    await writeFile(path, `\uFEFF${line(1)}\r\n\r\n   \r\n${line(2)}\r\n`);
    const problems = await readProblems(path, 'gsm8k');
    expect(problems.map((p) => [p.id, p.question, p.answer])).toEqual([
      ['gsm8k-0', 'q1', '1'],
      ['gsm8k-1', 'q2', '2'],
    ]);
  });

  it('names the file and the line of a bad record, counting blank lines', async () => {
    const path = join(FIXTURES, 'bad-gsm8k.jsonl');
    const err = await readProblems(path, 'gsm8k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetLineError);
    expect((err as DatasetLineError).message).toBe(
      `${path}:3: 'answer' must end with "#### N" (got "Two plus two is four.\\nThe answer is 4.")`,
    );
  });

  it('names the path of a missing or unreadable file', async () => {
    const missing = join(dir, 'nope.jsonl');
    await expect(readProblems(missing, 'math500')).rejects.toThrow(`cannot read math500 dataset file ${missing}: no such file`);
    await expect(readProblems(missing, 'math500')).rejects.toBeInstanceOf(BadInputError);
    await expect(readProblems(dir, 'gsm8k')).rejects.toThrow(`cannot read gsm8k dataset file ${dir}: is a directory`);
  });

  it('rejects a file of another dataset\'s format at its first line', async () => {
    await expect(readProblems(join(FIXTURES, 'math500.jsonl'), 'gsm8k')).rejects.toThrow(
      /math500\.jsonl:1: 'question' is missing/,
    );
  });
});

describe('streamProblems', () => {
  it('yields the records one by one and stops early when asked', async () => {
    const seen: string[] = [];
    for await (const problem of streamProblems(join(FIXTURES, 'omi2.jsonl'), 'omi2')) {
      seen.push(problem.id);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['omi2-0', 'omi2-1']);
  });
});
