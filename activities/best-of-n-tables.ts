// Stage: the best-of-N tables of every reward model from the samples and its scores, and the run's report.
import { join } from 'node:path';
import {
  aggregationsFor,
  bestOfNTable,
  samplingTotals,
  scoredResponses,
  type BestOfNInput,
  type BestOfNResult,
  type BonReport,
  type FailedRewardModel,
  type SampledAnswers,
} from '../core/best-of-n.js';
import type { SampleShardResult, ScoreShardResult } from '../core/raft.js';
import { readJsonlLines, writeFileAtomic } from '../store/files.js';
import { writeBestOfNReport } from '../report/write-report.js';
import { withFailureClasses } from './failures.js';
import type { SampledPrompt } from './sample-shard.js';
import type { ScoredPrompt } from './score-shard.js';

export interface BestOfNTablesInput {
  name: string;
  runDir: string;
  samplesPerProblem: number;
  tables: BestOfNInput['tables'];
  /** The samples shards, in shard order. */
  samples: SampleShardResult[];
  /** Each reward model that scored every shard, with its scores shards in the same order as `samples`. */
  rewardModels: Array<{ name: string; kind: 'prm' | 'orm'; scores: ScoreShardResult[] }>;
  failed: FailedRewardModel[];
}

export async function bestOfNTables(input: BestOfNTablesInput): Promise<BestOfNResult> {
  return withFailureClasses(async () => {
    // Answers and grades only: the response texts are the bulk of a samples file and no statistic reads them.
    const prompts: SampledAnswers[] = [];
    for (const shard of input.samples) {
      for await (const { text } of readJsonlLines(shard.uri)) {
        const p = JSON.parse(text) as SampledPrompt;
        prompts.push({ id: p.id, responses: p.responses.map((r) => ({ extracted: r.extracted, correct: r.correct })) });
      }
    }
    const sampling = samplingTotals(input.samples);
    const { ns, draws, seed, aggregations } = input.tables;

    const rewardModels: BonReport['rewardModels'] = [];
    for (const model of input.rewardModels) {
      const stepScores = new Map<string, number[][]>();
      for (const shard of model.scores) {
        for await (const { text } of readJsonlLines(shard.uri)) {
          const s = JSON.parse(text) as ScoredPrompt;
          stepScores.set(s.id, s.stepScores);
        }
      }
      const responses = scoredResponses(prompts, stepScores);
      const tables = aggregationsFor(model.kind, aggregations).map((aggregate) => {
        const table = bestOfNTable(responses, { ns, draws, seed, aggregate });
        // Problems the policy server refused have no responses, so the table cannot count them.
        if (sampling.refused > 0) table.notes.push(`${sampling.refused} of ${sampling.prompts} problems were refused by the policy server and are left out`);
        return table;
      });
      rewardModels.push({ name: model.name, kind: model.kind, tables });
    }

    const report: BonReport = {
      name: input.name,
      problems: sampling.prompts,
      samplesPerProblem: input.samplesPerProblem,
      rewardModels,
      ...(input.failed.length > 0 ? { failed: input.failed } : {}),
    };
    const { html, markdown } = await writeBestOfNReport(input.runDir, report);
    const summary = join(input.runDir, 'summary.json');
    const result: BestOfNResult = { runDir: input.runDir, report, sampling, files: { summary, html, markdown } };
    await writeFileAtomic(summary, JSON.stringify(result, null, 2));
    return result;
  });
}
