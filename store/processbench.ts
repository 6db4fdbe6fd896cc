// The benchmark files of `prm-raft prm eval`: ProcessBench's JSON arrays (one per subset) and tinymath's one file in
// the same format, each record validated and named when wrong.
import { join } from 'node:path';
import { BadInputError } from '../core/errors.js';
import { formatIssues } from '../core/parse-config.js';
import { BenchmarkRecord, type BenchmarkName, type BenchmarkSubset } from '../core/processbench.js';
import { readJson } from './files.js';

/** ProcessBench's subsets, in the paper's order: one `<subset>.json` each. */
export const PROCESSBENCH_SUBSETS = ['gsm8k', 'math', 'olympiadbench', 'omnimath'] as const;

/** Where each benchmark is read from when --data is not given (relative to the working directory). */
export const DEFAULT_DATA: Record<BenchmarkName, string> = {
  processbench: 'data/processbench',
  tinymath: 'data/tinymath/processbench.json',
};

const HOW_TO_GET: Record<BenchmarkName, string> = {
  processbench: "ProcessBench is the Hugging Face dataset Qwen/ProcessBench (Apache-2.0): put its gsm8k.json, math.json, olympiadbench.json and omnimath.json in one folder and pass it as --data",
  tinymath: 'build it with `python-sft/.venv/bin/python -m prm_raft.tiny.processbench` from the project root, or pass --data FILE',
};

/** The subset files of a benchmark: ProcessBench's four in folder `data`, tinymath's one file `data`. */
export function benchmarkFiles(name: BenchmarkName, data: string = DEFAULT_DATA[name]): Array<{ subset: string; path: string }> {
  return name === 'processbench' ? PROCESSBENCH_SUBSETS.map((subset) => ({ subset, path: join(data, `${subset}.json`) })) : [{ subset: 'tinymath', path: data }];
}

export async function readBenchmark(name: BenchmarkName, data?: string): Promise<BenchmarkSubset[]> {
  const subsets: BenchmarkSubset[] = [];
  for (const { subset, path } of benchmarkFiles(name, data)) {
    let json: unknown;
    try {
      json = await readJson(path);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new BadInputError(`${path}: cannot read the ${name} benchmark (${why}); ${HOW_TO_GET[name]}`);
    }
    if (!Array.isArray(json) || json.length === 0) throw new BadInputError(`${path}: expected a non-empty JSON array of ProcessBench records`);
    const ids = new Set<string>();
    const records = json.map((raw: unknown, i) => {
      const parsed = BenchmarkRecord.safeParse(raw, { reportInput: true });
      const id = (raw as { id?: unknown } | null)?.id;
      const named = `${path}: record ${i}${typeof id === 'string' ? ` ("${id}")` : ''}`;
      if (!parsed.success) throw new BadInputError(`${named}: ${formatIssues(parsed.error.issues).join('; ')}`);
      if (ids.has(parsed.data.id)) throw new BadInputError(`${named}: the id is used twice; scores are matched to records by id`);
      ids.add(parsed.data.id);
      return parsed.data;
    });
    subsets.push({ subset, records });
  }
  return subsets;
}
