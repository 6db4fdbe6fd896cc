// Stage: a raw dataset file → normalized problems in the store, once per file content, skip, limit and slice.
import { join } from 'node:path';
import type { EvalDatasetConfig } from '../core/config.js';
import { BadInputError } from '../core/errors.js';
import { cacheDir } from '../core/layout.js';
import type { DatasetManifest } from '../core/manifests.js';
import { readDataset } from '../store/dataset-files.js';
import { contentKey, exists, readJson, sha256File, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';

export async function prepareDataset(input: { dataset: EvalDatasetConfig; storeRoot: string }): Promise<DatasetManifest> {
  return withFailureClasses(async () => {
    const { dataset, storeRoot } = input;
    if (!(await exists(dataset.path))) {
      throw new BadInputError(`dataset "${dataset.name}": file ${dataset.path} not found (relative paths are read from the worker's directory, ${process.cwd()})`);
    }
    const key = contentKey({ v: 1, source: dataset.source, format: dataset.format, name: dataset.name, file: await sha256File(dataset.path), skip: dataset.skip, limit: dataset.limit, slice: dataset.slice });
    const dir = cacheDir(storeRoot, 'datasets', key);
    const manifestPath = join(dir, 'manifest.json');
    if (await exists(manifestPath)) return (await readJson(manifestPath)) as DatasetManifest;

    const kept = await readDataset(dataset);
    const manifest: DatasetManifest = { name: dataset.name, source: dataset.source, ...(await writeJsonlAtomic(join(dir, 'problems.jsonl'), kept)) };
    await writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2));
    return manifest;
  });
}
