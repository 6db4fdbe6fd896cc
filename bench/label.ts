// Benchmark: ER-PRM labeling (K solutions per problem, M completions per step prefix, all graded) against a stub
// policy server that answers at once, next to the stub's raw completion capacity measured alone in the same run.
// Not a test: it prints figures. Usage: node dist/bench/label.js [--problems 500] [--solutions 15] [--completions 16]
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { labelShard } from '../activities/label-shard.js';
import { prepareDataset } from '../activities/prepare-dataset.js';
import { chunk } from '../activities/sample-and-grade.js';
import { PolicyClient } from '../clients/policy.js';
import { Config } from '../core/config.js';
import { planShards } from '../core/evaluation.js';
import { labelPrmDataInputFromConfig } from '../core/labeling.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { PYTHON, startStubServers, writeBenchProblems } from './harness.js';
import { peakRss } from './measure.js';

const { values } = parseArgs({
  options: {
    problems: { type: 'string', default: '500' },
    solutions: { type: 'string', default: '15' },
    completions: { type: 'string', default: '16' },
    shard: { type: 'string', default: '25' },
    width: { type: 'string', default: '4' },
  },
});
const PROBLEMS = Number(values.problems);

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'prm-raft-bench-label-'));
  const stubs = await startStubServers();
  try {
    const problemsPath = await writeBenchProblems(dir, PROBLEMS);
    const config = Config.parse({
      name: 'bench',
      python: PYTHON,
      store: { root: join(dir, 'store') },
      policy: { model: 'stub', baseUrls: [`${stubs.policyUrl}/v1`], promptsPerRequest: 8, maxConcurrency: 8, maxRetries: 0 },
      prompt: { preset: 'tinymath' },
      evaluation: { datasets: [{ name: 'x', source: 'tinymath', path: problemsPath }] },
      labeling: {
        solutions: Number(values.solutions),
        completions: Number(values.completions),
        shardSize: Number(values.shard),
        maxShardsInFlight: Number(values.width),
        datasets: [{ name: 'bench', source: 'tinymath', path: problemsPath }],
      },
      grader: { workers: 1 },
    });
    const input = labelPrmDataInputFromConfig(config);
    const M = input.labeling.completions;

    // The stub alone: completion requests of the same shape and concurrency, nothing else.
    const policy = new PolicyClient(input.completer);
    const prompts = Array.from({ length: 4000 }, (_, i) => `Question: q${i}\nAnswer:\n${i} + 3 = ${i + 3}\n`);
    let t = performance.now();
    await runSlidingWindow(chunk(prompts, 8), 8 * Number(values.width), (group) => policy.complete(group, { n: M, temperature: 1, topP: 1, maxTokens: 64, stop: [] }));
    const stubRaw = (prompts.length * M) / ((performance.now() - t) / 1000);

    // The pipeline: the labeling activities a worker runs, with the workflow's sliding window.
    const memory = peakRss();
    const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);
    t = performance.now();
    const dataset = await run(prepareDataset, { dataset: input.labeling.datasets[0]!, storeRoot: input.storeRoot });
    const common = { ...input, generatorFingerprint: 'stub@bench', completerFingerprint: 'stub@bench' };
    const shards = await runSlidingWindow(planShards(dataset.count, input.labeling.shardSize), input.labeling.maxShardsInFlight, (shard) =>
      run(labelShard, { ...common, dataset, shard }),
    );
    const seconds = (performance.now() - t) / 1000;
    const completions = shards.reduce((n, s) => n + s.completions, 0);
    const solutions = shards.reduce((n, s) => n + s.solutions, 0);
    // Solutions are requests too: count them with the completions against the stub's raw rate.
    const report = {
      problems: PROBLEMS,
      solutionsPerProblem: input.labeling.solutions,
      completionsPerPrefix: M,
      stepsLabeled: shards.reduce((n, s) => n + s.steps, 0),
      completions,
      seconds: Number(seconds.toFixed(1)),
      pipelineCompletionsPerSecond: Math.round(completions / seconds),
      pipelineGenerationsPerSecond: Math.round((completions + solutions) / seconds),
      stubRawCompletionsPerSecond: Math.round(stubRaw),
      pipelineShareOfStub: Number(((completions + solutions) / seconds / stubRaw).toFixed(2)),
      peakRssMiB: Math.round(memory.stop() / 2 ** 20),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    stubs.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
