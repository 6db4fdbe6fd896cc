// Mocked activities for workflow tests of the RAFT iteration and the comparisons built on it.
import { Context } from '@temporalio/activity';
import type { Activities } from '../../activities/index.js';
import type { RunSftInput } from '../../activities/run-sft.js';
import type { SftResult } from '../../core/raft.js';

/** The queue of the (mock) worker that started a policy server. */
export const STOP_QUEUE = 'test-worker-own-queue';

export const manifest = (uri: string, count = 1) => ({ uri, count, sha256: `sha-${uri}` });

/** The activities a RAFT iteration calls. */
export type RaftActivities = Pick<Activities, 'prepareDataset' | 'checkPolicy' | 'checkPrm' | 'evaluateShard' | 'mergeShardResults' | 'writeRunSummary' | 'compareEvaluations' | 'sampleShard' | 'scoreShard' | 'selectResponses' | 'runSft' | 'startPolicyServer' | 'stopPolicyServer' | 'logprobShard'>;

/** Mocks that log every call; the SFT mock is replaced per test. */
export function mockActivities(calls: string[], runSft?: (input: RunSftInput) => Promise<SftResult>): RaftActivities {
  const evalShard = { uri: '/e', count: 2, sha256: 'e', dataset: 'test', shard: 0, tally: { total: 2, correct: 1 }, groups: {}, truncated: 0, cached: false };
  return {
    async prepareDataset({ dataset }) {
      calls.push(`prepare:${dataset.name}`);
      return { ...manifest(`/d/${dataset.name}`, dataset.name === 'train' ? 25 : 2), name: dataset.name, source: dataset.source };
    },
    async checkPolicy({ policy }) {
      calls.push(`checkPolicy:${policy.model}`);
      return { fingerprint: `${policy.model}@x` };
    },
    async checkPrm() {
      calls.push('checkPrm');
      return { fingerprint: 'p@x' };
    },
    async evaluateShard(input) {
      calls.push(`evaluate:${input.policy.model}`);
      return evalShard;
    },
    async mergeShardResults({ runDir, dataset }) {
      // In the evaluation's own folder, as the real one writes it: before and after are told apart by it.
      return manifest(`${runDir}/results/${dataset}.jsonl`, 2);
    },
    async compareEvaluations({ dataset, before, after }) {
      const run = (uri: string) => uri.split('/').at(-3);
      calls.push(`compare:${dataset}:${run(before.uri)}->${run(after.uri)}`);
      // Both evaluations get 1 of 2 right (the evaluateShard mock): one question gained, one lost.
      return { dataset, total: 2, gained: 1, lost: 1 };
    },
    async writeRunSummary({ runDir }) {
      calls.push(`summary:${runDir.split('/').at(-1)}`);
      return `${runDir}/summary.json`;
    },
    async sampleShard(input) {
      calls.push(`sample:${input.shard.index}`);
      const prompts = input.shard.end - input.shard.start;
      return { ...manifest(`/s/${input.shard.index}`, prompts), dataset: 'train', shard: input.shard.index, prompts, responses: prompts * 4, truncated: 1, refused: 0, correct: prompts, cached: false };
    },
    async scoreShard(input) {
      calls.push(`score:${input.samples.shard}`);
      return { ...manifest(`/p/${input.samples.shard}`, input.samples.prompts), dataset: 'train', shard: input.samples.shard, scored: input.samples.responses, empty: 0, cached: false };
    },
    async logprobShard(input) {
      // The queue it ran on, too: the forward passes belong on the gpu queue.
      calls.push(`logprobs:${input.shard.shard}:${input.checkpoint}@${Context.current().info.taskQueue}`);
      return { ...manifest(`/lp/${input.shard.shard}${input.checkpoint}`, input.shard.count), dataset: input.shard.dataset, shard: input.shard.shard, checkpoint: input.checkpoint, responses: 4, tokens: 40, cached: false };
    },
    async selectResponses(input) {
      // A baseline mode has no scores: '-' in place of the scores shard.
      calls.push(`select:${input.shards.map((s) => `${s.samples.shard}/${s.scores?.shard ?? '-'}`).join(',')}`);
      return {
        sftData: manifest('/sft.jsonl', 25),
        selected: manifest('/selected.jsonl', 25),
        stats: { prompts: 25, kept: 25, scored: 25, scoreSum: 20, minSelectedScore: 0.5, selectedCorrect: 20, promptsWithACorrectResponse: 22, randomExpectedCorrect: 12.5, majorityCorrect: 18, rejected: {} },
        cached: false,
      };
    },
    runSft:
      runSft ??
      (async (input) => {
        calls.push(`sft:${input.perDeviceBatchSize}x${input.gradientAccumulationSteps}`);
        return { checkpoint: '/cache/sft/abcdef123456/final', steps: 10, lossFirst: 2, lossLast: 1, perDeviceBatchSize: input.perDeviceBatchSize, gradientAccumulationSteps: input.gradientAccumulationSteps, cached: false };
      }),
    async startPolicyServer(input) {
      calls.push(`serve:${input.model}`);
      return { model: input.model, baseUrl: 'http://127.0.0.1:9999/v1', pid: 4242, stopQueue: STOP_QUEUE };
    },
    async stopPolicyServer({ pid }) {
      calls.push(`stop:${pid}`);
    },
  };
}

