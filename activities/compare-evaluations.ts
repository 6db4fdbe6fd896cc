// Stage: two evaluations of one dataset paired question by question — the counts behind a change's paired SE.
import { parseGradedLine, ResultPairing } from '../core/evaluation.js';
import type { ArtifactManifest, DatasetChange } from '../core/manifests.js';
import { readJsonlLines } from '../store/files.js';
import { withFailureClasses } from './failures.js';

export interface CompareEvaluationsInput {
  dataset: string;
  /** The per-question results (`DatasetAccuracy.results`) of the evaluation before and the one after. */
  before: ArtifactManifest;
  after: ArtifactManifest;
}

/** Questions gained and lost between two evaluations of one dataset; files without the same question ids fail for good. */
export async function compareEvaluations(input: CompareEvaluationsInput): Promise<DatasetChange> {
  return withFailureClasses(async () => {
    const pairing = new ResultPairing({ before: input.before.uri, after: input.after.uri });
    for await (const { line, text } of readJsonlLines(input.before.uri)) pairing.addBefore(parseGradedLine(text, { file: input.before.uri, line }));
    for await (const { line, text } of readJsonlLines(input.after.uri)) pairing.addAfter(parseGradedLine(text, { file: input.after.uri, line }));
    return pairing.counts(input.dataset);
  });
}
