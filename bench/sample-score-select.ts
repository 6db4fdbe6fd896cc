// Benchmark: sampling + scoring + selection of many prompts × N against stub servers that answer at once,
// next to the stubs' raw capacity measured alone in the same run. Not a test: it prints figures.
// Usage: node dist/bench/sample-score-select.js [--prompts 10000] [--n 16] [--shard 500] [--width 4]
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareDataset } from '../activities/prepare-dataset.js';
import { sampleShard } from '../activities/sample-shard.js';
import { scoreShard } from '../activities/score-shard.js';
import { chunk } from '../activities/sample-and-grade.js';
import { selectResponses } from '../activities/select-responses.js';
import { PolicyClient } from '../clients/policy.js';
import { PrmClient } from '../clients/prm.js';
import { Config } from '../core/config.js';
import { planShards } from '../core/evaluation.js';
import { isPrmToServe, raftIterationInputFromConfig } from '../core/raft.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { PYTHON, startStubServers, writeBenchProblems } from './harness.js';
import { peakRss } from './measure.js';

const { values } = parseArgs({
  options: { prompts: { type: 'string', default: '10000' }, n: { type: 'string', default: '16' }, shard: { type: 'string', default: '500' }, width: { type: 'string', default: '4' } },
});
const PROMPTS = Number(values.prompts);
const N = Number(values.n);

async function main() {
  const dir = await mkdtemp(join(tmpdir(), 'prm-raft-bench-'));
  const stubs = await startStubServers();
  try {
    const problemsPath = await writeBenchProblems(dir, PROMPTS);
    const config = Config.parse({
      name: 'bench',
      python: PYTHON,
      store: { root: join(dir, 'store') },
      policy: { model: 'stub', baseUrls: [`${stubs.policyUrl}/v1`], checkpoint: dir, promptsPerRequest: 8, maxConcurrency: 8, maxRetries: 0 },
      prompt: { preset: 'tinymath' },
      evaluation: { datasets: [{ name: 'x', source: 'tinymath', path: problemsPath }] },
      sampling: { n: N, shardSize: Number(values.shard), maxShardsInFlight: Number(values.width), datasets: [{ name: 'bench', source: 'tinymath', path: problemsPath }] },
      prm: { model: 'stub-prm', baseUrls: [stubs.prmUrl], maxConcurrency: 8, maxRetries: 0 },
      grader: { workers: 1 },
    });
    const input = raftIterationInputFromConfig(config);
    // The config above reaches its PRM at a URL, with the default selection.mode prm.
    const prmEndpoint = input.prm;
    if (!prmEndpoint || isPrmToServe(prmEndpoint)) throw new Error('the bench config must reach its PRM at a URL');

    // The stubs alone: the same requests the pipeline makes, with the same concurrency, and nothing else.
    const policy = new PolicyClient(input.policy);
    const prompts = Array.from({ length: Math.min(PROMPTS, 2000) }, (_, i) => `Question: q${i}\nAnswer:\n`);
    let t = performance.now();
    await runSlidingWindow(chunk(prompts, 8), 8 * Number(values.width), (group) => policy.complete(group, { n: N, temperature: 1, topP: 1, maxTokens: 64, stop: [] }));
    const policyRaw = (prompts.length * N) / ((performance.now() - t) / 1000);
    const prm = new PrmClient(prmEndpoint);
    const items = Array.from({ length: N }, (_, j) => ({ id: `q/${j}`, question: 'q', steps: ['1 + 2 = 3', '3 - 1 = 2', '#### 2'] }));
    t = performance.now();
    await runSlidingWindow(prompts, 8 * Number(values.width), () => prm.score(items));
    const prmRaw = (prompts.length * N) / ((performance.now() - t) / 1000);

    // The pipeline: the same activities a worker runs, with the workflow's sliding window.
    const memory = peakRss();
    const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);
    t = performance.now();
    const dataset = await run(prepareDataset, { dataset: input.sampling.datasets[0]!, storeRoot: input.storeRoot });
    const shards = await runSlidingWindow(planShards(dataset.count, input.sampling.shardSize), input.sampling.maxShardsInFlight, async (shard) => {
      const samples = await run(sampleShard, { ...input, policyFingerprint: 'stub@bench', dataset, shard });
      const scores = await run(scoreShard, { prm: prmEndpoint, steps: input.steps, storeRoot: input.storeRoot, prmFingerprint: 'stub-prm@bench', samples });
      return { samples, scores };
    });
    const selection = await run(selectResponses, { selection: input.selection, prompt: input.prompt, storeRoot: input.storeRoot, aggregation: 'min', shards });
    const seconds = (performance.now() - t) / 1000;
    const responses = shards.reduce((n, s) => n + s.samples.responses, 0);
    // Each response is sampled and then scored: the stubs' combined capacity is both of them in a row.
    const bothRaw = 1 / (1 / policyRaw + 1 / prmRaw);
    const report = {
      prompts: PROMPTS,
      n: N,
      responses,
      seconds: Number(seconds.toFixed(1)),
      pipelineResponsesPerSecond: Math.round(responses / seconds),
      policyStubRawResponsesPerSecond: Math.round(policyRaw),
      prmStubRawResponsesPerSecond: Math.round(prmRaw),
      bothStubsRawResponsesPerSecond: Math.round(bothRaw),
      pipelineShareOfBothStubs: Number((responses / seconds / bothRaw).toFixed(2)),
      keptPrompts: selection.stats.kept,
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
