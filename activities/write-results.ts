// Stage: the run's own folder — per-question results per dataset and the summary, written whole.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactManifest, EvalShardResult, EvaluationSummary } from '../core/manifests.js';
import type { ComparisonResult } from '../core/comparison.js';
import type { LabelRunSummary } from '../core/labeling.js';
import type { RaftIterationResult } from '../core/raft.js';
import { sha256, writeFileAtomic } from '../store/files.js';

export async function mergeShardResults(input: { runDir: string; dataset: string; shards: EvalShardResult[] }): Promise<ArtifactManifest> {
  const parts = await Promise.all(input.shards.map((s) => readFile(s.uri, 'utf8')));
  const text = parts.join('');
  const uri = join(input.runDir, 'results', `${input.dataset}.jsonl`);
  await writeFileAtomic(uri, text);
  return { uri, count: input.shards.reduce((n, s) => n + s.count, 0), sha256: sha256(text) };
}

/** The run's closing manifest (an evaluation summary, an iteration result, a labeling summary), written whole. */
export async function writeRunSummary(input: { runDir: string; summary: EvaluationSummary | RaftIterationResult | LabelRunSummary | ComparisonResult }): Promise<string> {
  const path = join(input.runDir, 'summary.json');
  await writeFileAtomic(path, JSON.stringify(input.summary, null, 2));
  return path;
}
