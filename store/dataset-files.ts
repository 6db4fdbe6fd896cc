// Dataset files on disk → normalized problems, streamed line by line so large files never sit whole in memory.
import { seededPermutation } from '../core/random.js';
import type { EvalDatasetConfig } from '../core/config.js';
import { parseDatasetLine, parseNormalizedLine } from '../core/datasets.js';
import { BadInputError } from '../core/errors.js';
import type { DatasetSource, ProblemRecord } from '../core/records.js';
import { readJsonlLines } from './files.js';

export interface ReadProblemsOptions {
  /** The dataset's name, the prefix of derived ids (`<name>-<index>`); defaults to the source. */
  name?: string;
  /** The file already holds normalized problems (`prm-raft data prepare` output), not the source's raw format. */
  normalized?: boolean;
}

// A missing or unreadable file is a config mistake, not something a retry fixes.
const BAD_PATH_CODES: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
};

export async function* streamProblems(
  path: string,
  source: DatasetSource,
  options: ReadProblemsOptions = {},
): AsyncGenerator<ProblemRecord> {
  let index = 0;
  try {
    for await (const { line, text } of readJsonlLines(path)) {
      // A byte-order mark (some editors write one) would make the first line invalid JSON.
      const json = line === 1 ? text.replace(/^\uFEFF/, '') : text;
      const where = { file: path, line, index: index++, idPrefix: options.name };
      yield options.normalized ? parseNormalizedLine(json, where) : parseDatasetLine(source, json, where);
    }
  } catch (err) {
    const reason = BAD_PATH_CODES[(err as NodeJS.ErrnoException).code ?? ''];
    if (reason) throw new BadInputError(`cannot read ${source} dataset file ${path}: ${reason}`, { cause: err });
    throw err;
  }
}

export async function readProblems(
  path: string,
  source: DatasetSource,
  options: ReadProblemsOptions = {},
): Promise<ProblemRecord[]> {
  const problems: ProblemRecord[] = [];
  for await (const problem of streamProblems(path, source, options)) problems.push(problem);
  return problems;
}

/**
 * A configured dataset as a run reads it: every line parsed (those that `skip` and `limit` leave out too), then
 * `skip` and `limit` applied. A missing file, a bad line or nothing left is bad input. The prepare stage and the
 * CLI's pre-flight both read datasets through this, so the CLI refuses exactly what the stage would.
 */
export async function readDataset(dataset: EvalDatasetConfig): Promise<ProblemRecord[]> {
  const problems = await readProblems(dataset.path, dataset.source, { name: dataset.name, normalized: dataset.format === 'normalized' });
  const skip = dataset.skip ?? 0;
  const kept = problems.slice(skip, dataset.limit === undefined ? undefined : skip + dataset.limit);
  if (kept.length === 0) {
    throw new BadInputError(`dataset "${dataset.name}": no problems left in ${dataset.path} (${problems.length} read, skip ${skip}): lower skip or check the file`);
  }
  if (!dataset.slice) return kept;
  const { seed, start, end } = dataset.slice;
  if (end > kept.length) {
    throw new BadInputError(`dataset "${dataset.name}": slice [${start}, ${end}) runs past its ${kept.length} problems (after skip and limit)`);
  }
  // Sorted back into file order: a slice is a set of problems, and shards stay in the order of the file.
  return seededPermutation(kept.length, seed).slice(start, end).sort((a, b) => a - b).map((i) => kept[i]!);
}
