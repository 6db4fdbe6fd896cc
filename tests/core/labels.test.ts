// Monte-Carlo step labels: hand-computed values and the laws of issue 4 (bounds, limits, monotone in η, mirror).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../core/errors.js';
import { erLabel, hardLabel, labelFromCounts, softLabel, StepCounts } from '../../core/labels.js';

// Counts as the paper samples them (m = 16) and beyond; k anywhere in [0, m].
const counts = fc.integer({ min: 1, max: 1000 }).chain((m) => fc.record({ k: fc.integer({ min: 0, max: m }), m: fc.constant(m) }));
const inner = counts.filter(({ k, m }) => k > 0 && k < m);
const eta = fc.double({ min: -1e4, max: 1e4, noNaN: true });

describe('StepCounts', () => {
  it('accepts 0 ≤ k ≤ m, m ≥ 1', () => {
    expect(StepCounts.parse({ k: 0, m: 1 })).toEqual({ k: 0, m: 1 });
    expect(StepCounts.parse({ k: 16, m: 16 })).toEqual({ k: 16, m: 16 });
  });
  it('rejects k > m with a message naming k', () => {
    const r = StepCounts.safeParse({ k: 5, m: 4 });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['k']);
    expect(r.error?.issues[0]?.message).toMatch(/cannot exceed m/);
  });
  it('rejects negative, fractional and zero counts', () => {
    for (const c of [{ k: -1, m: 4 }, { k: 1.5, m: 4 }, { k: 0, m: 0 }, { k: 1, m: 2.5 }]) expect(StepCounts.safeParse(c).success).toBe(false);
  });
});

describe('hard and soft labels', () => {
  it('are any-correct and the fraction correct', () => {
    expect([hardLabel(0, 4), hardLabel(1, 4), hardLabel(4, 4)]).toEqual([0, 1, 1]);
    expect([softLabel(0, 4), softLabel(1, 4), softLabel(4, 4)]).toEqual([0, 0.25, 1]);
  });
  it('reject bad counts', () => {
    expect(() => hardLabel(5, 4)).toThrow(BadInputError);
    expect(() => softLabel(1, 0)).toThrow(/0 ≤ k ≤ m and m ≥ 1/);
  });
});

describe('erLabel', () => {
  it('matches hand-computed values', () => {
    // k=1, m=4, η=2: p = 1/4, ln(3/4 + e²/4)/2 = ln(2.5972640…)/2 = 0.9544585…/2 = 0.4772293
    expect(erLabel(1, 4, 2)).toBeCloseTo(0.4772292963966203, 14);
    // k=1, m=4, η=−2: ln(3/4 + e⁻²/4)/(−2) = ln(0.7838338…)/(−2) = 0.1217791
    expect(erLabel(1, 4, -2)).toBeCloseTo(0.12177912217637285, 14);
    // k=3, m=4, η=2: the mirror of the previous case, 1 − 0.1217791
    expect(erLabel(3, 4, 2)).toBeCloseTo(0.8782208778236271, 14);
    // k=1, m=2, η=1: ln((1 + e)/2) = ln(1.8591409…) = 0.6201145
    expect(erLabel(1, 2, 1)).toBeCloseTo(0.6201145069582775, 14);
    // k=2, m=16, η=10 (the paper's deepseek setting): ln(7/8 + e¹⁰/8)/10 = ln(2754.2058…)/10 = 0.7920876
    expect(erLabel(2, 16, 10)).toBeCloseTo(0.7920876207340934, 14);
  });
  it('is finite and right at η = ±1000, where e^η overflows', () => {
    // η = 1000: ln(p·e^η·(1 + …))/η = 1 + ln(p)/η; p = 1/16 gives 1 − ln(16)/1000
    expect(erLabel(1, 16, 1000)).toBeCloseTo(1 - Math.log(16) / 1000, 14);
    expect(erLabel(15, 16, 1000)).toBeCloseTo(1 - Math.log(16 / 15) / 1000, 14);
    // η = −1000: ln(1 − p + …)/η; p = 15/16 gives ln(1/16)/(−1000) = ln(16)/1000
    expect(erLabel(15, 16, -1000)).toBeCloseTo(Math.log(16) / 1000, 14);
    expect(erLabel(1, 16, -1000)).toBeCloseTo(Math.log(16 / 15) / 1000, 14);
  });
  it('is the soft label at η = 0 and across the series threshold', () => {
    expect(erLabel(1, 4, 0)).toBe(0.25);
    expect(erLabel(1, 4, -0)).toBe(0.25);
    expect(erLabel(1, 3, Number.MIN_VALUE)).toBe(1 / 3);
    // First order: p + p(1−p)·η/2; on both sides of 1e-8 the two forms agree to rounding.
    for (const e of [9.99e-9, 1.001e-8, -9.99e-9, -1.001e-8]) expect(erLabel(1, 4, e)).toBeCloseTo(0.25 + (0.1875 * e) / 2, 15);
  });
  it('rejects non-finite η and bad counts', () => {
    expect(() => erLabel(1, 4, Number.NaN)).toThrow(/finite/);
    expect(() => erLabel(1, 4, Number.POSITIVE_INFINITY)).toThrow(BadInputError);
    expect(() => erLabel(5, 4, 1)).toThrow(BadInputError);
    expect(() => erLabel(-1, 4, 1)).toThrow(BadInputError);
  });

  it('lies in [0, 1], as do hard and soft', () => {
    fc.assert(
      fc.property(counts, eta, ({ k, m }, e) => {
        for (const x of [hardLabel(k, m), softLabel(k, m), erLabel(k, m, e)]) expect(x >= 0 && x <= 1).toBe(true);
      }),
    );
  });
  it('is monotone non-decreasing in η', () => {
    fc.assert(
      fc.property(counts, eta, eta, ({ k, m }, a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(erLabel(k, m, lo)).toBeLessThanOrEqual(erLabel(k, m, hi) + 1e-12);
      }),
    );
  });
  it('is strictly between soft and hard for 0 < η, and between 0 and soft for η < 0', () => {
    fc.assert(
      fc.property(inner, fc.double({ min: 1e-3, max: 100, noNaN: true }), ({ k, m }, e) => {
        const p = k / m;
        expect(erLabel(k, m, e)).toBeGreaterThan(p);
        expect(erLabel(k, m, e)).toBeLessThan(1);
        expect(erLabel(k, m, -e)).toBeLessThan(p);
        expect(erLabel(k, m, -e)).toBeGreaterThan(0);
      }),
    );
  });
  it('tends to the soft label as η → 0', () => {
    fc.assert(
      fc.property(counts, fc.constantFrom(1e-9, -1e-9, 1e-7, -1e-7, 1e-12, -1e-300), ({ k, m }, e) => {
        expect(Math.abs(erLabel(k, m, e) - k / m)).toBeLessThan(1e-6);
      }),
    );
    // At η = 1e-4 the gap is the first-order term p(1−p)·η/2 ≤ η/8, not yet below 1e-6 in general.
    fc.assert(
      fc.property(counts, ({ k, m }) => {
        const p = k / m;
        expect(Math.abs(erLabel(k, m, 1e-4) - p)).toBeLessThanOrEqual(1e-4 / 8 + 1e-15);
        expect(erLabel(k, m, 1e-4)).toBeCloseTo(p + (p * (1 - p) * 1e-4) / 2, 9);
      }),
    );
  });
  it('tends to the hard label as η → +∞ for k > 0: the gap is ln(1/p)/η', () => {
    fc.assert(
      fc.property(
        counts.filter(({ k }) => k > 0),
        fc.constantFrom(1e7, 1e9, 1e300),
        ({ k, m }, e) => {
          const er = erLabel(k, m, e);
          expect(hardLabel(k, m) - er).toBeLessThan(1e-6);
          expect(hardLabel(k, m) - er).toBeCloseTo(Math.log(m / k) / e, 12);
        },
      ),
    );
  });
  it('tends to 0 as η → −∞ for k < m: the soft-min', () => {
    fc.assert(
      fc.property(
        counts.filter(({ k, m }) => k < m),
        fc.constantFrom(-1e7, -1e300),
        ({ k, m }, e) => {
          expect(erLabel(k, m, e)).toBeLessThan(1e-6);
        },
      ),
    );
  });
  it('gives 0 for k = 0 and 1 for k = m, for every η', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.double({ noNaN: true, noDefaultInfinity: true }), (m, e) => {
        expect(erLabel(0, m, e)).toBe(0);
        expect(erLabel(m, m, e)).toBe(1);
      }),
    );
  });
  it('mirrors for negative η: ER(−η, p) = 1 − ER(η, 1 − p)', () => {
    fc.assert(
      fc.property(counts, fc.double({ noNaN: true, noDefaultInfinity: true }), ({ k, m }, e) => {
        expect(Math.abs(erLabel(k, m, -e) - (1 - erLabel(m - k, m, e)))).toBeLessThan(1e-9);
      }),
    );
  });
  it('is finite at η = ±1000 for all counts', () => {
    fc.assert(
      fc.property(counts, fc.constantFrom(1000, -1000), ({ k, m }, e) => {
        expect(Number.isFinite(erLabel(k, m, e))).toBe(true);
      }),
    );
  });
});

describe('labelFromCounts', () => {
  it('dispatches on the kind', () => {
    const c = { k: 1, m: 4 };
    expect(labelFromCounts(c, 'hard')).toBe(1);
    expect(labelFromCounts(c, 'soft')).toBe(0.25);
    expect(labelFromCounts(c, 'er', 2)).toBe(erLabel(1, 4, 2));
  });
  it('needs η for the er label', () => {
    expect(() => labelFromCounts({ k: 1, m: 4 }, 'er')).toThrow(/needs η/);
  });
});
