// The batch split after an out-of-memory (smaller per device, the effective batch exact), and the progress query.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RaftProgress, smallerBatchSplit } from '../../core/raft.js';

describe('smallerBatchSplit', () => {
  it('halves an even per-device batch and doubles accumulation', () => {
    expect(smallerBatchSplit(8, 1)).toEqual({ perDeviceBatchSize: 4, gradientAccumulationSteps: 2 });
  });

  it('takes an odd batch to a divisor of the effective batch, never changing it', () => {
    expect(smallerBatchSplit(7, 1)).toEqual({ perDeviceBatchSize: 1, gradientAccumulationSteps: 7 });
    expect(smallerBatchSplit(9, 1)).toEqual({ perDeviceBatchSize: 3, gradientAccumulationSteps: 3 });
    expect(smallerBatchSplit(1, 4)).toBeNull();
  });

  it('keeps the effective batch and at most halves the per-device batch, for any split', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 512 }), fc.integer({ min: 1, max: 64 }), (p, g) => {
        const next = smallerBatchSplit(p, g);
        expect(next).not.toBeNull();
        expect(next!.perDeviceBatchSize * next!.gradientAccumulationSteps).toBe(p * g);
        expect(next!.perDeviceBatchSize).toBeLessThanOrEqual(Math.floor(p / 2));
        expect(next!.perDeviceBatchSize).toBeGreaterThanOrEqual(1);
      }),
    );
  });
});

describe('RaftProgress', () => {
  const progress = { stage: 'training', shardsTotal: 2, shardsSampled: 2, scoring: true, shardsScored: 2, promptsTotal: 20 } as const;

  it('has no SFT progress of its own (the CLI reads it from the SFT heartbeats), and reads older workers that sent sft: null', () => {
    expect(RaftProgress.parse(progress)).toEqual(progress);
    expect(RaftProgress.parse({ ...progress, sft: null })).toEqual(progress);
  });
});
