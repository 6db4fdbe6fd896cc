// A campaign's pure rules: how prompts are dealt out, when it stops, when `next` is refused; and the dataset slice.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { campaignIterationInput, initialCampaignState, iterationPromptSets, nextRejection, stopReason, type CampaignState, type RaftCampaignInput } from '../../core/campaign.js';
import { CampaignConfig, type EvalDatasetConfig } from '../../core/config.js';
import { BadInputError } from '../../core/errors.js';
import { seededPermutation } from '../../core/random.js';
import { readDataset } from '../../store/dataset-files.js';
import { ROOT } from '../helpers/stack.js';

const sets: EvalDatasetConfig[] = [
  { name: 'a', source: 'tinymath', path: 'a.jsonl', format: 'raw' },
  { name: 'b', source: 'tinymath', path: 'b.jsonl', format: 'raw' },
  { name: 'c', source: 'tinymath', path: 'c.jsonl', format: 'raw' },
];
const pool = [
  { name: 'a', count: 1000 },
  { name: 'b', count: 333 },
  { name: 'c', count: 7 },
];

describe('iterationPromptSets', () => {
  it('deals every prompt of every set to exactly one iteration, in proportion to the sets’ sizes', () => {
    const n = 134;
    const taken = new Map(sets.map((s) => [s.name, [] as number[]]));
    for (let cursor = 0; cursor + n <= 1340; cursor += n) {
      const shares = iterationPromptSets(sets, pool, cursor, n, 3);
      // Each share within one prompt per set of n (floors), and no empty set is sent.
      const size = shares.reduce((s, d) => s + d.slice!.end - d.slice!.start, 0);
      expect(Math.abs(size - n)).toBeLessThanOrEqual(sets.length);
      for (const d of shares) {
        expect(d.slice!.seed).toBe(3);
        expect(d.slice!.end).toBeGreaterThan(d.slice!.start);
        for (let i = d.slice!.start; i < d.slice!.end; i++) taken.get(d.name)!.push(i);
      }
    }
    // Ten iterations of 134 take all 1,340: each position of each set once.
    for (const { name, count } of pool) expect(taken.get(name)!.sort((x, y) => x - y)).toEqual(Array.from({ length: count }, (_, i) => i));
  });
});

describe('seededPermutation', () => {
  it('is a permutation, the same for a seed and different across seeds', () => {
    const p = seededPermutation(50, 1);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(seededPermutation(50, 1)).toEqual(p);
    expect(seededPermutation(50, 2)).not.toEqual(p);
  });
});

describe('a dataset slice', () => {
  const dataset: EvalDatasetConfig = { name: 'tm', source: 'tinymath', path: join(ROOT, 'data/tinymath/test.jsonl'), format: 'raw', skip: 10, limit: 40 };
  it('takes disjoint sets of problems from one seeded order, each in file order', async () => {
    const all = await readDataset(dataset);
    const first = await readDataset({ ...dataset, slice: { seed: 5, start: 0, end: 20 } });
    const second = await readDataset({ ...dataset, slice: { seed: 5, start: 20, end: 40 } });
    expect(first).toHaveLength(20);
    expect(second).toHaveLength(20);
    const ids = (ps: typeof all) => ps.map((p) => p.id);
    expect(new Set([...ids(first), ...ids(second)])).toEqual(new Set(ids(all)));
    const position = (id: string) => ids(all).indexOf(id);
    expect(ids(first).map(position)).toEqual([...ids(first).map(position)].sort((x, y) => x - y));
    // A random order, not the file's first 20.
    expect(ids(first)).not.toEqual(ids(all).slice(0, 20));
  });

  it('refuses a slice that runs past the problems', async () => {
    await expect(readDataset({ ...dataset, slice: { seed: 5, start: 30, end: 41 } })).rejects.toThrow(BadInputError);
    await expect(readDataset({ ...dataset, slice: { seed: 5, start: 30, end: 41 } })).rejects.toThrow('slice [30, 41) runs past its 40 problems');
  });
});

function state(over: Partial<CampaignState> = {}): CampaignState {
  const input = { iteration: { policy: { checkpoint: '/c', model: 'm' } } } as RaftCampaignInput;
  return { ...initialCampaignState(input, [{ name: 'a', count: 100 }]), ...over };
}

describe('stopReason', () => {
  const campaign = CampaignConfig.parse({ promptsPerIteration: 30, maxIterations: 3, patience: 2 });
  it('goes on while iterations, prompts and patience last', () => {
    expect(stopReason(state({ iterations: 2, cursor: 60, best: { iteration: 1, accuracy: 0.5, policy: state().policy } }), campaign)).toBeNull();
  });
  it('stops at maxIterations, when the prompts run out, and after `patience` iterations without a new best', () => {
    expect(stopReason(state({ iterations: 3 }), campaign)).toBe('reached maxIterations (3)');
    expect(stopReason(state({ iterations: 1, cursor: 80 }), campaign)).toBe('prompts ran out: 20 of the 100 in sampling.datasets are left, and an iteration takes 30');
    const best = { iteration: 0, accuracy: 0.4, policy: { checkpoint: '/init', model: 'm' } };
    expect(stopReason(state({ iterations: 2, cursor: 60, best }), campaign)).toBe(
      'no new best accuracy in 2 iteration(s); the best policy is the initial policy (40.0%, /init)',
    );
  });
});

describe('nextRejection', () => {
  it('takes a trigger only when the campaign is idle, or failed and waiting for one', () => {
    expect(nextRejection(state(), false)).toBeNull();
    expect(nextRejection(state({ status: 'failed', lastError: { iteration: 1, message: 'x' } }), true)).toBeNull();
    expect(nextRejection(state({ status: 'running' }), false)).toBe('iteration 1 is running; trigger the next one when it has finished');
    expect(nextRejection(state({ paused: true }), false)).toBe('the campaign is paused; resume it first');
    expect(nextRejection(state({ status: 'stopped', stopReason: 'reached maxIterations (3)' }), false)).toBe('the campaign has stopped: reached maxIterations (3)');
    expect(nextRejection(state({ triggers: 1 }), false)).toBe('iteration 1 is already triggered and about to start');
    expect(nextRejection(state(), true)).toBe('the campaign runs its iterations back to back (--auto); there is nothing to trigger');
  });
});

describe('campaignIterationInput: PRL', () => {
  const base = { policy: { checkpoint: '/init', model: 'm', baseUrls: ['http://x/v1'] }, servePolicy: false, sampling: { datasets: sets }, sft: { learningRate: 1e-5 } };
  const campaign = CampaignConfig.parse({ promptsPerIteration: 10 });
  const prl = { eta: 2, boundary: 'after-step', steps: { by: 'newline' }, score: 'sequence', logprobs: {} };
  const later = (input: RaftCampaignInput) => ({ ...initialCampaignState(input, pool), iterations: 1, policy: { checkpoint: '/tuned-1', model: 'm+raft-1' } });
  it("takes the campaign's initial policy as π0 when prl.initialPolicy is not set, and keeps a configured one", () => {
    const input = { iteration: { ...base, prl }, campaign, auto: false } as unknown as RaftCampaignInput;
    const second = campaignIterationInput(input, later(input));
    expect(second.policy.checkpoint).toBe('/tuned-1');
    expect(second.prl?.initialPolicy).toBe('/init');
    // Iteration 1 samples from π0 itself: the two checkpoints are the same, and PRL is the outcome.
    expect(campaignIterationInput(input, initialCampaignState(input, pool)).prl?.initialPolicy).toBe('/init');
    const own = { ...input, iteration: { ...input.iteration, prl: { ...prl, initialPolicy: '/sft-base' } } } as unknown as RaftCampaignInput;
    expect(campaignIterationInput(own, later(own)).prl?.initialPolicy).toBe('/sft-base');
    // Not in prl mode: no prl settings appear.
    const plain = { iteration: base, campaign, auto: false } as unknown as RaftCampaignInput;
    expect(campaignIterationInput(plain, later(plain))).not.toHaveProperty('prl');
  });
});
