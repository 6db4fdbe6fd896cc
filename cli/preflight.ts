// Pre-flight: every dataset a command will read is read here first, through the prepare stage's own reader, so a
// missing file, a bad line or an empty set is refused (exit 2, naming file:line) before any workflow starts.
import type { Config, EvalDatasetConfig } from '../core/config.js';
import { BadInputError } from '../core/errors.js';
import { readDataset } from '../store/dataset-files.js';
import { UsageError } from './load-config.js';

/** Reads each dataset once (one listed in two sections alike is read once); every problem found is in the error. */
export async function preflightDatasets(datasets: readonly EvalDatasetConfig[]): Promise<void> {
  const distinct = new Map(datasets.map((d) => [JSON.stringify(d), d]));
  const problems: string[] = [];
  for (const dataset of distinct.values()) {
    try {
      await readDataset(dataset);
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) {
    throw new UsageError(`bad dataset input, nothing started (relative paths are read from ${process.cwd()}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** Every dataset a config names, whichever command reads it: what `config check` reads. */
export function configDatasets(config: Config): EvalDatasetConfig[] {
  return [
    ...config.evaluation.datasets,
    ...(config.sampling?.datasets ?? []),
    ...(config.labeling?.datasets ?? []),
    ...(config.bestOfN?.sampling.datasets ?? []),
  ];
}
