// prm-raft grade --in FILE.jsonl [--out FILE.jsonl] — math-verify grading of model outputs.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gradeFile } from '../clients/grader.js';
import { BadInputError } from '../core/errors.js';
import { DEFAULT_PYTHON, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';

const USAGE = 'prm-raft grade --in FILE.jsonl [--out FILE.jsonl] [--workers N]';

export async function gradeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { in: { type: 'string' }, out: { type: 'string' }, workers: { type: 'string', default: '2' }, python: { type: 'string', default: DEFAULT_PYTHON } },
    USAGE,
  );
  if (!values.in || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers: expected a positive integer, got "${values.workers}"`);
  const scratch = values.out ? null : await mkdtemp(join(tmpdir(), 'prm-raft-grade-'));
  const outPath = values.out ?? join(scratch as string, 'graded.jsonl');
  try {
    const accuracy = await gradeFile({ python: values.python, inPath: values.in, outPath, workers });
    process.stderr.write(`${accuracy}\n`);
    if (scratch) process.stdout.write(await readFile(outPath, 'utf8'));
    return 0;
  } catch (err) {
    if (err instanceof BadInputError) throw new UsageError(err.message);
    throw err;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
