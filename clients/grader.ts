// The math-verify grader: one Python process per shard of answers, JSONL in, JSONL out.
import { BadInputError, TransientError } from '../core/errors.js';
import { runProcess } from './process.js';

export interface GradeFileOptions {
  python: string;
  inPath: string;
  outPath: string;
  workers: number;
  signal?: AbortSignal;
}

/** Resolves with the grader's closing stderr line (its accuracy). */
export async function gradeFile(opts: GradeFileOptions): Promise<string> {
  const { exitCode, stderrTail } = await runProcess(
    opts.python,
    ['-m', 'prm_raft.grade', '--in', opts.inPath, '--out', opts.outPath, '--workers', String(opts.workers)],
    { signal: opts.signal },
  );
  if (exitCode === 0) return stderrTail.split('\n').at(-1) ?? '';
  const why = `grader (${opts.python} -m prm_raft.grade) exited ${exitCode}: ${stderrTail || 'no message'}`;
  if (exitCode === 2) throw new BadInputError(why);
  throw new TransientError(why);
}
