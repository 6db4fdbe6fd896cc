// Reads a finished labeling run's counts and writes a PRM training set, streamed, appearing whole or not at all.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BadInputError } from '../core/errors.js';
import { exportExample, type ExportFormat } from '../core/label-export.js';
import { LabeledSolution, LabelPlan, LabelRunSummary } from '../core/labeling.js';
import type { LabelKind } from '../core/labels.js';
import { exists, readJson, readJsonlLines, writeFileAtomic } from './files.js';

export interface LabelExportJob {
  runDir: string;
  kind: LabelKind;
  eta?: number;
  format: ExportFormat;
  out: string;
}

export interface LabelExportStats {
  out: string;
  solutions: number;
  steps: number;
  /** Solutions left out: no steps, or a prefix the completer refused. */
  skipped: number;
  meanLabel: number | null;
}

/** The run's summary; for a run that has not finished, an error naming the shards it still lacks. */
export async function readFinishedLabelRun(runDir: string): Promise<LabelRunSummary> {
  const summaryPath = join(runDir, 'summary.json');
  if (await exists(summaryPath)) {
    const parsed = LabelRunSummary.safeParse(await readJson(summaryPath));
    if (!parsed.success) throw new BadInputError(`${summaryPath} is not the summary of a labeling run (prm-raft label)`);
    return parsed.data;
  }
  const planPath = join(runDir, 'plan.json');
  if (!(await exists(planPath))) {
    throw new BadInputError(`no labeling run at ${runDir}: it has neither summary.json nor plan.json; \`prm-raft status\` lists recent runs`);
  }
  const plan = LabelPlan.parse(await readJson(planPath));
  const missing = [];
  for (const s of plan.shards) if (!(await exists(s.resultPath))) missing.push(s);
  const named = missing
    .slice(0, 10)
    .map((s) => `${s.dataset} shard ${s.shard} (problems ${s.start}–${s.end - 1})`)
    .join(', ');
  const more = missing.length > 10 ? `, and ${missing.length - 10} more` : '';
  throw new BadInputError(
    missing.length > 0
      ? `the labeling run at ${runDir} is not finished: ${missing.length} of ${plan.shards.length} shards have no counts yet: ${named}${more}. Wait for it, or restart it with \`prm-raft resume RUN\``
      : `the labeling run at ${runDir} has every shard's counts but no summary yet: it is finishing, or it failed at the end; restart it with \`prm-raft resume RUN\``,
  );
}

export async function exportLabels(job: LabelExportJob): Promise<LabelExportStats> {
  const summary = await readFinishedLabelRun(job.runDir);
  const stats: LabelExportStats = { out: job.out, solutions: 0, steps: 0, skipped: 0, meanLabel: null };
  let labelSum = 0;
  async function* lines(): AsyncGenerator<string> {
    for (const shard of summary.shards) {
      if (!(await exists(shard.uri))) throw new BadInputError(`${shard.uri} is missing; run the labeling again`);
      // Hashed as it streams: a changed shard fails the export, and the half-written output is removed.
      const hash = createHash('sha256');
      for await (const { line, text } of readJsonlLines(shard.uri)) {
        hash.update(`${text}\n`);
        const parsed = LabeledSolution.safeParse(parseJsonLine(text, `${shard.uri}:${line}`));
        if (!parsed.success) throw new BadInputError(`${shard.uri}:${line}: not a labeled solution: ${parsed.error.issues[0]?.message}; run the labeling again`);
        const example = exportExample(parsed.data, job.kind, job.eta, job.format);
        if (example === null) {
          stats.skipped += 1;
          continue;
        }
        const labels = 'labels' in example ? example.labels : example.value;
        stats.solutions += 1;
        stats.steps += labels.length;
        labelSum += labels.reduce((a, b) => a + b, 0);
        yield `${JSON.stringify(example)}\n`;
      }
      if (hash.digest('hex') !== shard.sha256) {
        throw new BadInputError(`${shard.uri} changed since the run wrote it (its sha256 differs); run the labeling again`);
      }
    }
  }
  await writeFileAtomic(job.out, lines());
  stats.meanLabel = stats.steps > 0 ? labelSum / stats.steps : null;
  return stats;
}

/** A damaged counts file is bad input, named by file:line, like every other bad line. */
function parseJsonLine(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`${where}: not JSON (${(err as Error).message}); run the labeling again`);
  }
}
