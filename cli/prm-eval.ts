// prm-raft prm eval — a PRM against step-labelled solutions (ProcessBench, or tinymath's exact labels): does its
// first low-scored step fall on the labelled first error? Scores come from a live PRM or from a file.
import { PrmClient } from '../clients/prm.js';
import { BadInputError } from '../core/errors.js';
import {
  BenchmarkName,
  joinScores,
  PrmEvalOutput,
  StepScoresLine,
  sweepThresholds,
  type BenchmarkSubset,
  type ScoredSubset,
} from '../core/processbench.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { prmEvalMarkdown, prmEvalPage } from '../report/processbench.js';
import { writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { readBenchmark } from '../store/processbench.js';
import { readValidatedJsonl } from '../store/validated-jsonl.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';

export const PRM_EVAL_USAGE = `prm-raft prm eval --benchmark processbench|tinymath [--data PATH] [--config F] [--save-scores FILE.jsonl] [--threshold T] [--json] [--html FILE]
       prm-raft prm eval --benchmark processbench|tinymath [--data PATH] --scores FILE.jsonl [--threshold T] [--json] [--html FILE]`;

/** Records per request: one batched forward pass on the server, small enough for long ProcessBench solutions. */
const RECORDS_PER_REQUEST = 16;

export async function prmEvalCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      benchmark: { type: 'string' },
      data: { type: 'string' },
      scores: { type: 'string' },
      config: { type: 'string' },
      'save-scores': { type: 'string' },
      threshold: { type: 'string' },
      json: { type: 'boolean', default: false },
      html: { type: 'string' },
    },
    PRM_EVAL_USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${PRM_EVAL_USAGE}`);
  const benchmark = BenchmarkName.safeParse(values.benchmark);
  if (!benchmark.success) {
    const problem = values.benchmark === undefined ? 'is required' : `expected processbench or tinymath, got "${values.benchmark}"`;
    throw new UsageError(`--benchmark: ${problem}\nusage: ${PRM_EVAL_USAGE}`);
  }
  if (values.scores !== undefined && (values.config !== undefined || values['save-scores'] !== undefined)) {
    throw new UsageError(`--scores reads scores computed elsewhere: --config and --save-scores go with a live PRM\nusage: ${PRM_EVAL_USAGE}`);
  }
  const threshold = thresholdFlag(values.threshold);
  try {
    const subsets = await readBenchmark(benchmark.data, values.data);
    const scored =
      values.scores !== undefined
        ? joinScores(subsets, await readValidatedJsonl(values.scores, StepScoresLine, 'step scores'), (line) => `${values.scores}:${line}`)
        : await scoreLive(subsets, values.config ?? DEFAULT_CONFIG, values['save-scores']);
    const sweep = sweepThresholds(scored, threshold);
    if (values.html !== undefined) await writeFileAtomic(values.html, prmEvalPage(benchmark.data, sweep));
    process.stdout.write(values.json ? `${JSON.stringify(PrmEvalOutput.parse(sweep.chosen))}\n` : prmEvalMarkdown(benchmark.data, sweep));
    return 0;
  } catch (err) {
    // Bad data is the user's to fix: exit 2 with the message, as for flags.
    if (err instanceof BadInputError) throw new UsageError(err.message);
    throw err;
  }
}

/** A number in [0, 1]: step scores are probabilities, so any other threshold flags every step or none. */
function thresholdFlag(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const t = raw.trim() === '' ? Number.NaN : Number(raw);
  if (!(t >= 0 && t <= 1)) throw new UsageError(`--threshold: expected a number in [0, 1], got "${raw}"`);
  return t;
}

/** Every record scored by the config's PRM, with progress on stderr; `save` keeps the scores as a --scores file. */
async function scoreLive(subsets: BenchmarkSubset[], configPath: string, save: string | undefined): Promise<ScoredSubset[]> {
  const config = await loadConfig(configPath);
  if (!config.prm) throw new UsageError(`${configPath}: no prm section; add one (model, baseUrls) or pass --scores FILE.jsonl`);
  if (config.prm.kind !== 'prm') throw new UsageError(`${configPath}: prm.kind is ${config.prm.kind}; prm eval needs one score per step`);
  const client = new PrmClient(config.prm);
  const batches = subsets.flatMap((s) =>
    Array.from({ length: Math.ceil(s.records.length / RECORDS_PER_REQUEST) }, (_, b) => ({ subset: s.subset, records: s.records.slice(b * RECORDS_PER_REQUEST, (b + 1) * RECORDS_PER_REQUEST) })),
  );
  const progress = progressReporter(subsets.reduce((n, s) => n + s.records.length, 0));
  const scores = await runSlidingWindow(batches, config.prm.maxConcurrency, async (batch) => {
    const items = batch.records.map((r) => ({ id: `${batch.subset}/${r.id}`, question: r.problem, steps: r.steps }));
    const result = await client.score(items);
    progress(batch.records.length);
    return batch.records.map((r, i): StepScoresLine => ({ subset: batch.subset, id: r.id, step_scores: result[i] as number[] }));
  });
  const lines = scores.flat();
  if (save !== undefined) await writeJsonlAtomic(save, lines);
  // The lines are in record order, subset by subset.
  let next = 0;
  return subsets.map((s) => ({ subset: s.subset, records: s.records.map((r) => ({ label: r.label, scores: (lines[next++] as StepScoresLine).step_scores })) }));
}

/** "scored 160/800 records, 35.2/s, ETA 18s" at most every two seconds, and once at the end. */
function progressReporter(total: number): (done: number) => void {
  const start = Date.now();
  let done = 0;
  let shown = 0;
  return (n) => {
    done += n;
    const now = Date.now();
    if (done < total && now - shown < 2000) return;
    shown = now;
    const rate = done / Math.max(0.001, (now - start) / 1000);
    const eta = done < total ? `, ETA ${Math.ceil((total - done) / rate)}s` : '';
    process.stderr.write(`scored ${done}/${total} records, ${rate.toFixed(1)}/s${eta}\n`);
  };
}
