// The batch split after an out-of-memory: smaller per device, the effective batch exact.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { smallerBatchSplit } from '../../core/raft.js';

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
