// A finished labeling run's solutions with their log-prob files under π and π0 (the labelLogprobs workflow's
// output): PRL labels streamed to an export file, or paired with the ER(η) labels for the agreement table.
import type { ExportFormat } from '../core/label-export.js';
import { BadInputError } from '../core/errors.js';
import { LabeledSolution, type LabelRunSummary } from '../core/labeling.js';
import { LogprobLine, type LogprobShardResult, type PrlBoundary, type PrlLabelRecord } from '../core/prl.js';
import { agreementPair, prlExportExample, solutionPrlLabels } from '../core/prl-export.js';
import type { AgreementSolution } from '../core/prl-agreement.js';
import type { StepSplitConfig } from '../core/steps.js';
import { readJsonlLines, writeFileAtomic } from './files.js';

export interface PrlRunJob {
  summary: LabelRunSummary;
  /** Per labels shard, in the summary's order: its log-prob file under π, and under π0 (null: π0 is π, PRL = r). */
  logprobs: Array<{ current: LogprobShardResult; initial: LogprobShardResult | null }>;
  steps: StepSplitConfig;
  eta: number;
  boundary: PrlBoundary;
}

/** Every solution of the run with its PRL labels (null when it has no steps or a refused prefix). */
async function* solutionsWithLabels(job: PrlRunJob): AsyncGenerator<{ solution: LabeledSolution; labels: PrlLabelRecord | null }> {
  if (job.logprobs.length !== job.summary.shards.length) throw new BadInputError(`${job.logprobs.length} log-prob files for ${job.summary.shards.length} labels shards`);
  for (const [i, shard] of job.summary.shards.entries()) {
    const files = job.logprobs[i] as PrlRunJob['logprobs'][number];
    const current = readJsonlLines(files.current.uri)[Symbol.asyncIterator]();
    const initial = files.initial ? readJsonlLines(files.initial.uri)[Symbol.asyncIterator]() : null;
    // The stage's files hold one line per solution, in the shard's order.
    for await (const { line, text } of readJsonlLines(shard.uri)) {
      const parsed = LabeledSolution.safeParse(JSON.parse(text));
      if (!parsed.success) throw new BadInputError(`${shard.uri}:${line}: not a labeled solution: ${parsed.error.issues[0]?.message}`);
      const next = async (it: AsyncIterator<{ text: string }>, uri: string) => {
        const r = await it.next();
        if (r.done) throw new BadInputError(`${uri} ends before ${shard.uri}:${line}: it is not this shard's log-prob file`);
        return LogprobLine.parse(JSON.parse(r.value.text));
      };
      const cur = await next(current, files.current.uri);
      const ini = initial && files.initial ? await next(initial, files.initial.uri) : cur;
      yield { solution: parsed.data, labels: solutionPrlLabels(parsed.data, { current: cur, initial: ini }, job.steps, job.eta, job.boundary) };
    }
  }
}

export interface PrlExportStats {
  out: string;
  solutions: number;
  steps: number;
  skipped: number;
  meanLabel: number | null;
  minLabel: number | null;
  maxLabel: number | null;
  /** Step values clipped to [0, 1] (math-shepherd only). */
  clipped: number;
}

export async function exportPrlLabels(job: PrlRunJob & { format: ExportFormat; out: string }): Promise<PrlExportStats> {
  const stats: PrlExportStats = { out: job.out, solutions: 0, steps: 0, skipped: 0, meanLabel: null, minLabel: null, maxLabel: null, clipped: 0 };
  let sum = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const { solution, labels } of solutionsWithLabels(job)) {
      if (!labels) {
        stats.skipped += 1;
        continue;
      }
      const { example, clipped } = prlExportExample(solution, labels, job.format);
      stats.solutions += 1;
      stats.steps += labels.stepValues.length;
      stats.clipped += clipped;
      for (const v of labels.stepValues) {
        sum += v;
        stats.minLabel = Math.min(stats.minLabel ?? v, v);
        stats.maxLabel = Math.max(stats.maxLabel ?? v, v);
      }
      yield `${JSON.stringify(example)}\n`;
    }
  }
  await writeFileAtomic(job.out, lines());
  stats.meanLabel = stats.steps > 0 ? sum / stats.steps : null;
  return stats;
}

/** The (PRL, ER(η)) pairs of every solution that has steps, at the job's η. */
export async function prlAgreementSolutions(job: PrlRunJob): Promise<AgreementSolution[]> {
  const out: AgreementSolution[] = [];
  for await (const { solution, labels } of solutionsWithLabels(job)) if (labels) out.push(agreementPair(solution, labels));
  return out;
}
