// raftIteration on the time-skipping test server with mocked activities: order, SFT retries, out-of-memory, bad input.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../core/parse-config.js';
import { LogprobJobSettings } from '../../core/prl.js';
import { raftIterationInputFromConfig, type RaftIterationInput, type RaftIterationResult } from '../../core/raft.js';
import { mockActivities, STOP_QUEUE, type RaftActivities } from '../helpers/raft-mocks.js';
import { recordHistory, runWorkers, timeSkippingEnv } from '../helpers/temporal.js';
import { pairedEvaluations } from './paired-evaluations.js';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

function testInput(sft = '{ perDeviceBatchSize: 8, gradientAccumulationSteps: 1 }'): RaftIterationInput {
  const parsed = parseConfigText(
    `
name: raft-test
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: /ckpt/base }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: test, source: tinymath, path: t.jsonl }] }
sampling: { n: 4, shardSize: 10, maxShardsInFlight: 2, datasets: [{ name: train, source: tinymath, path: tr.jsonl }] }
prm: { model: p, baseUrls: ["http://127.0.0.1:9"] }
sft: ${sft}
temporal: { taskQueues: { cpu: raft-cpu, gpu: raft-gpu } }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return raftIterationInputFromConfig(parsed.config);
}

async function run(activities: RaftActivities, input: RaftIterationInput, workflowId: string): Promise<RaftIterationResult> {
  return runWorkers(env, [input.taskQueues.cpu, input.taskQueues.gpu, STOP_QUEUE], activities, () =>
    env.client.workflow.execute<(i: RaftIterationInput) => Promise<RaftIterationResult>>('raftIteration', { taskQueue: input.taskQueues.cpu, workflowId, args: [input] }),
  );
}

describe('raftIteration', () => {
  it('runs the stages in order: sample and score every shard, select, train, serve the new policy, evaluate, stop it', async () => {
    const calls: string[] = [];
    // The input policy answers the first of two questions, the tuned one both: one gained, none lost.
    const evaluations = pairedEvaluations(calls, (wid) => (wid === 'raft-order-after' ? [true, true] : [true, false]));
    const result = await run({ ...mockActivities(calls), ...evaluations }, testInput(), 'raft-order');
    const at = (c: string) => calls.indexOf(c);
    expect(calls.filter((c) => c.startsWith('sample:')).sort()).toEqual(['sample:0', 'sample:1', 'sample:2']);
    for (const i of [0, 1, 2]) expect(at(`score:${i}`)).toBeGreaterThan(at(`sample:${i}`));
    expect(calls).toContain('select:0/0,1/1,2/2');
    expect(at('sft:8x1')).toBeGreaterThan(at('select:0/0,1/1,2/2'));
    const newModel = 'm+raft-abcdef12';
    expect(at(`serve:${newModel}`)).toBeGreaterThan(at('sft:8x1'));
    expect(at(`evaluate:${newModel}`)).toBeGreaterThan(at(`serve:${newModel}`));
    expect(at('stop:4242')).toBeGreaterThan(at(`evaluate:${newModel}`));
    // The input policy is evaluated too, while it is served (here by the configured server).
    expect(calls).toContain('evaluate:m');
    // Then the two evaluations' results are paired question by question, each dataset once, before the summary.
    expect(calls.filter((c) => c.startsWith('compare:'))).toEqual(['compare:test:raft-order-before->raft-order-after']);
    expect(at('compare:test:raft-order-before->raft-order-after')).toBeGreaterThan(at('summary:raft-order-after'));
    expect(calls.at(-1)).toBe('summary:raft-order');
    // Paired before → after (not after → before): what the tuned policy gained and lost, and both accuracies.
    expect(result.change).toEqual([{ dataset: 'test', total: 2, gained: 1, lost: 0 }]);
    expect(result.before.datasets[0]).toMatchObject({ total: 2, correct: 1, accuracy: 0.5 });
    expect(result.after.datasets[0]).toMatchObject({ total: 2, correct: 2, accuracy: 1 });
    expect(result.sampling).toEqual({ prompts: 25, responses: 100, truncated: 3, refused: 0, correct: 25 });
    expect(calls.filter((c) => c === 'checkPrm')).toHaveLength(1);
    expect(result.selection.mode).toBe('prm');
    expect(result.selection.meanSelectedScore).toBeCloseTo(0.8);
    expect(result.policyAfter).toBe('/cache/sft/abcdef123456/final');

    await recordHistory(env.client, 'raft-order');
  });

  it('neither checks nor calls a reward model in a baseline selection mode', async () => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    const selections: Array<Parameters<typeof base.selectResponses>[0]> = [];
    const activities = {
      ...base,
      async selectResponses(i: Parameters<typeof base.selectResponses>[0]) {
        selections.push(i);
        return base.selectResponses(i);
      },
    };
    const input = testInput();
    const result = await run(activities, { ...input, selection: { ...input.selection, mode: 'majority' }, prm: undefined }, 'raft-majority');
    expect(calls).not.toContain('checkPrm');
    expect(calls.filter((c) => c.startsWith('score:'))).toEqual([]);
    expect(calls).toContain('select:0/-,1/-,2/-');
    expect(selections[0]).toMatchObject({ selection: { mode: 'majority' } });
    expect(selections[0]?.aggregation).toBeUndefined();
    expect(result.selection).toMatchObject({ mode: 'majority', majorityCorrect: 18, randomExpectedCorrect: 12.5 });
    expect(calls.at(-1)).toBe('summary:raft-majority');
  });

  it('in prl mode scores every shard under the input policy and π0 on the gpu queue before selecting, and calls no reward model', async () => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    const selections: Array<Parameters<typeof base.selectResponses>[0]> = [];
    const activities = {
      ...base,
      async selectResponses(i: Parameters<typeof base.selectResponses>[0]) {
        selections.push(i);
        return base.selectResponses(i);
      },
    };
    const input = testInput();
    const prl = { eta: 2, boundary: 'after-step' as const, steps: input.steps, score: 'sequence' as const, initialPolicy: '/ckpt/pi0', logprobs: LogprobJobSettings.parse({}) };
    const result = await run(activities, { ...input, selection: { ...input.selection, mode: 'prl' }, prm: undefined, prl }, 'raft-prl');
    expect(calls).not.toContain('checkPrm');
    expect(calls.filter((c) => c.startsWith('score:'))).toEqual([]);
    const logprobs = calls.filter((c) => c.startsWith('logprobs:'));
    expect([...logprobs].sort()).toEqual([0, 1, 2].flatMap((i) => [`logprobs:${i}:/ckpt/base@raft-gpu`, `logprobs:${i}:/ckpt/pi0@raft-gpu`]));
    const at = (c: string) => calls.indexOf(c);
    for (const c of logprobs) {
      expect(at(c)).toBeGreaterThan(at(`sample:${c.split(':')[1]}`));
      expect(at(c)).toBeLessThan(at('select:0/-,1/-,2/-'));
    }
    // Each shard's two files reach the selection, with the prl settings.
    expect(selections[0]?.prl).toEqual(prl);
    expect(selections[0]?.shards.map((s) => [s.logprobs?.current.uri, s.logprobs?.initial?.uri])).toEqual([0, 1, 2].map((i) => [`/lp/${i}/ckpt/base`, `/lp/${i}/ckpt/pi0`]));
    expect(result.selection.mode).toBe('prl');
    expect(calls.at(-1)).toBe('summary:raft-prl');

    // π0 is the input policy (a campaign's first iteration): one file per shard, and PRL is the outcome.
    const sameCalls: string[] = [];
    await run({ ...mockActivities(sameCalls) }, { ...input, selection: { ...input.selection, mode: 'prl' }, prm: undefined, prl: { ...prl, initialPolicy: '/ckpt/base/' } }, 'raft-prl-same');
    expect(sameCalls.filter((c) => c.startsWith('logprobs:')).sort()).toEqual([0, 1, 2].map((i) => `logprobs:${i}:/ckpt/base@raft-gpu`));
  });

  it('fails at once in prl mode without its settings, naming prl', async () => {
    const calls: string[] = [];
    const input = testInput();
    const error = await run(mockActivities(calls), { ...input, selection: { ...input.selection, mode: 'prl' }, prm: undefined }, 'raft-prl-missing').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(((error as WorkflowFailedError).cause as ApplicationFailure).message).toMatch(/the iteration's input lacks prl \(η and the initial policy/);
    expect(calls).toEqual([]);
  });

  it("pairs only the datasets evaluated both before and after, against a comparison's shared evaluation", async () => {
    const calls: string[] = [];
    const input = testInput();
    const dataset = (name: string) => ({
      dataset: name,
      source: 'tinymath' as const,
      total: 2,
      correct: 1,
      accuracy: 0.5,
      truncated: 0,
      groups: {},
      results: { uri: `/store/runs/cmp-baseline/results/${name}.jsonl`, count: 2, sha256: name },
    });
    // The shared evaluation has a dataset this iteration's config no longer evaluates.
    const before = { runDir: '/store/runs/cmp-baseline', policy: 'm', datasets: [dataset('retired'), dataset('test')], shardsCached: 0, shardsRun: 2 };
    const samples = [0, 1, 2].map((shard) => ({ uri: `/s/${shard}`, count: 10, sha256: 's', dataset: 'train', shard, prompts: 10, responses: 40, truncated: 0, refused: 0, correct: 10, cached: true }));
    const result = await run(mockActivities(calls), { ...input, reuse: { samples, before } }, 'raft-reuse');
    expect(calls.filter((c) => c.startsWith('compare:'))).toEqual(['compare:test:cmp-baseline->raft-reuse-after']);
    expect(result.change.map((c) => c.dataset)).toEqual(['test']);
    // The shared evaluation is not run again.
    expect(calls).not.toContain('evaluate:m');
  });

  it('samples a lane\'s next shard while its last one is still being scored', async () => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    // Shards 0 and 1 are scored only once shard 2 is being sampled: two lanes, three shards. Lanes that waited for
    // their scoring before taking the next shard would never get there.
    const activities = {
      ...base,
      async scoreShard(i: Parameters<typeof base.scoreShard>[0]) {
        if (i.samples.shard < 2) {
          const deadline = Date.now() + 20_000;
          while (!calls.includes('sample:2')) {
            if (Date.now() > deadline) throw ApplicationFailure.nonRetryable(`shard 2 was not sampled while shard ${i.samples.shard} was scored`, 'Test');
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        return base.scoreShard(i);
      },
    };
    const result = await run(activities, testInput(), 'raft-scoring-beside');
    expect(calls.indexOf('sample:2')).toBeLessThan(calls.indexOf('score:0'));
    // Scores still pair with their shards, in shard order.
    expect(calls).toContain('select:0/0,1/1,2/2');
    expect(result.selection.mode).toBe('prm');
  });

  it('fails the run when a shard\'s scoring fails, and stops taking new shards', async () => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    const activities = {
      ...base,
      async scoreShard(i: Parameters<typeof base.scoreShard>[0]) {
        if (i.samples.shard === 0) throw ApplicationFailure.nonRetryable('the PRM refused shard 0', 'BadInput');
        return base.scoreShard(i);
      },
    };
    const error = await run(activities, testInput(), 'raft-scoring-fails').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(messages(error)).toContain('the PRM refused shard 0');
    expect(calls.some((c) => c.startsWith('select:'))).toBe(false);
    expect(calls.some((c) => c.startsWith('sft:'))).toBe(false);
  });

  it('fails at once in prm mode without a reward model, naming prm and selection.mode', async () => {
    const calls: string[] = [];
    const error = await run(mockActivities(calls), { ...testInput(), prm: undefined }, 'raft-no-prm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(messages(error)).toContain("the iteration's input lacks prm (the reward model that selection.mode prm ranks responses by");
    expect(calls).toEqual([]);
  });

  it('retries a crashed SFT job, which then succeeds', async () => {
    const calls: string[] = [];
    let attempts = 0;
    const base = mockActivities(calls);
    const result = await run(
      mockActivities(calls, async (input) => {
        attempts += 1;
        if (attempts === 1) throw new Error('SFT job exited 1; the next attempt resumes from its last checkpoint');
        return base.runSft(input);
      }),
      testInput(),
      'raft-sft-retry',
    );
    expect(attempts).toBe(2);
    expect(result.sft.steps).toBe(10);
  });

  // Out of memory above a per-device batch of 2. The effective batch stays exact, so the job resumes its own
  // checkpoints: an odd 7×2 goes to 2×7 (halving 7 to 3 would make 3×4 = 12, another job).
  it.each([
    ['halves the batch and doubles accumulation', '{ perDeviceBatchSize: 8, gradientAccumulationSteps: 1 }', ['oom:8', 'oom:4', 'sft:2x4'], [2, 4]],
    ['keeps an odd effective batch exact', '{ perDeviceBatchSize: 7, gradientAccumulationSteps: 2 }', ['oom:7', 'sft:2x7'], [2, 7]],
  ])('%s after an out-of-memory, when allowed', async (_what, sft, expected, [perDeviceBatchSize, gradientAccumulationSteps]) => {
    const calls: string[] = [];
    const base = mockActivities(calls);
    const result = await run(
      mockActivities(calls, async (input) => {
        if (input.perDeviceBatchSize > 2) {
          calls.push(`oom:${input.perDeviceBatchSize}`);
          throw ApplicationFailure.nonRetryable('out of GPU memory', 'OutOfMemory');
        }
        return base.runSft(input);
      }),
      testInput(sft),
      `raft-oom-${perDeviceBatchSize}x${gradientAccumulationSteps}`,
    );
    expect(calls.filter((c) => c.startsWith('oom:') || c.startsWith('sft:'))).toEqual(expected);
    expect(result.sft).toMatchObject({ perDeviceBatchSize, gradientAccumulationSteps });
  });

  it('fails on out-of-memory when halving is not allowed, without retrying', async () => {
    const calls: string[] = [];
    let attempts = 0;
    const error = await run(
      mockActivities(calls, async () => {
        attempts += 1;
        throw ApplicationFailure.nonRetryable('SFT job ran out of GPU memory at per-device batch 8', 'OutOfMemory');
      }),
      testInput('{ perDeviceBatchSize: 8, allowBatchHalving: false }'),
      'raft-oom-no-halving',
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect(attempts).toBe(1);
    expect(messages(error)).toContain('ran out of GPU memory');
  });

  it('fails at once on a bad SFT config, with the job message, and serves nothing', async () => {
    const calls: string[] = [];
    let attempts = 0;
    const error = await run(
      mockActivities(calls, async () => {
        attempts += 1;
        throw ApplicationFailure.nonRetryable('SFT job rejected its config or data: train_file line 3: missing "completion"', 'BadInput');
      }),
      testInput(),
      'raft-bad-sft',
    ).catch((e: unknown) => e);
    expect(attempts).toBe(1);
    expect(messages(error)).toContain('train_file line 3: missing "completion"');
    expect(calls.some((c) => c.startsWith('serve:'))).toBe(false);
  });

  it('stops a policy server it started for the input policy, even when a later stage fails', async () => {
    const calls: string[] = [];
    const input = { ...testInput(), servePolicy: true };
    const failing = mockActivities(calls);
    failing.scoreShard = async () => {
      throw ApplicationFailure.nonRetryable('PRM server http://127.0.0.1:9/v1/score answered 400: bad', 'BadInput');
    };
    const error = await run(failing, input, 'raft-serve-input').catch((e: unknown) => e);
    expect(messages(error)).toContain('answered 400: bad');
    expect(calls).toContain('serve:m');
    expect(calls).toContain('stop:4242');
  });
});

function messages(err: unknown): string {
  const all: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) all.push(e.message);
  return all.join(' | ');
}
