// Best-of-N statistics on hand-made score tables whose answers can be worked out by hand.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BonTable, bestOfNTable, bonTableMarkdown, defaultNs, passAtN, rewardHackingFlag, type BonRow, type ScoredResponse } from '../../core/best-of-n.js';
import { Aggregation } from '../../core/aggregate.js';
import { BadInputError } from '../../core/errors.js';

const r = (problem_id: string, answer: string | null, correct: boolean, step_scores: number[]): ScoredResponse => ({ problem_id, answer, correct, step_scores });
const row = (n: number, best_of_n: number, spread = 0): BonRow => ({ n, best_of_n, majority: 0, weighted: 0, pass_at_n: 0, spread, problems_short: 0 });

describe('bestOfNTable', () => {
  it('picks by the minimum step score by default, and by the last with --aggregate last', () => {
    // min: wrong 0.5 beats right 0.2; last: right 0.9 beats wrong 0.5.
    const rs = [r('p', '1', true, [0.2, 0.9]), r('p', '2', false, [0.5, 0.5])];
    expect(bestOfNTable(rs, { ns: [2] }).results[0]?.best_of_n).toBe(0);
    expect(bestOfNTable(rs, { ns: [2], aggregate: 'last' }).results[0]?.best_of_n).toBe(1);
  });

  it('breaks score ties towards the earliest response in input order', () => {
    const wrongFirst = [r('p', '1', false, [0.7]), r('p', '2', true, [0.7])];
    const rightFirst = [r('p', '2', true, [0.7]), r('p', '1', false, [0.7])];
    expect(bestOfNTable(wrongFirst, { ns: [2] }).results[0]?.best_of_n).toBe(0);
    expect(bestOfNTable(rightFirst, { ns: [2] }).results[0]?.best_of_n).toBe(1);
  });

  it('breaks majority ties towards the answer appearing first', () => {
    const rs = [r('p', '5', false, [0.1]), r('p', '6', true, [0.1]), r('p', '6', true, [0.1]), r('p', '5', false, [0.1])];
    expect(bestOfNTable(rs, { ns: [4] }).results[0]).toMatchObject({ majority: 0, weighted: 0, pass_at_n: 1 });
  });

  it('gives 0 for everything on problems with no right response', () => {
    const rs = [r('a', '1', false, [0.9]), r('a', '2', false, [0.1]), r('b', '3', false, [0.5]), r('b', null, false, [])];
    const t = bestOfNTable(rs, { ns: [1, 2], draws: 5 });
    for (const x of t.results) expect(x).toMatchObject({ best_of_n: 0, majority: 0, weighted: 0, pass_at_n: 0, spread: 0 });
  });

  it('lets the majority and the weighted vote disagree', () => {
    // Three low-scored votes for the wrong 7 against two high-scored votes for the right 8.
    const rs = [
      r('p', '7', false, [0.1]),
      r('p', '7', false, [0.2]),
      r('p', '7', false, [0.1]),
      r('p', '8', true, [0.9]),
      r('p', '8', true, [0.6]),
      // A second problem where both votes agree on the right answer.
      r('q', '3', true, [0.5]),
      r('q', '3', true, [0.5]),
      r('q', '4', false, [0.9]),
    ];
    const t = bestOfNTable(rs, { ns: [5] });
    expect(t.results[0]).toMatchObject({ n: 5, best_of_n: 0.5, majority: 0.5, weighted: 1, pass_at_n: 1, spread: 0, problems_short: 1 });
  });

  it('counts an answer as right if any response giving it is', () => {
    const rs = [r('p', '4', false, [0.1]), r('p', '4', true, [0.1]), r('p', '9', false, [0.9])];
    expect(bestOfNTable(rs, { ns: [3] }).results[0]).toMatchObject({ majority: 1, weighted: 0 });
  });

  it('treats a problem whose answers are all null as wrong in both votes', () => {
    const rs = [r('p', null, true, [0.9]), r('p', null, true, [0.8])];
    expect(bestOfNTable(rs, { ns: [2] }).results[0]).toMatchObject({ best_of_n: 1, majority: 0, weighted: 0, pass_at_n: 1 });
  });

  it('ranks a response without steps below every scored one, and counts it 0 in the weighted vote', () => {
    const rs = [r('p', '1', true, []), r('p', '2', false, [0]), r('p', '1', true, []), r('p', '2', false, [0.01])];
    const t = bestOfNTable(rs, { ns: [4] });
    expect(t.results[0]).toMatchObject({ best_of_n: 0, majority: 1, weighted: 0 });
    expect(t.notes).toContain('2 of 4 responses have no step scores: they rank below every scored response and add 0 to the weighted vote');
    // With no scored response at all, the earliest is picked.
    expect(bestOfNTable([r('p', '1', true, []), r('p', '2', false, [])], { ns: [2] }).results[0]?.best_of_n).toBe(1);
  });

  it('uses all responses of a problem with fewer than N, and says so', () => {
    const rs = [...Array.from({ length: 4 }, (_, i) => r('a', String(i), i === 3, [i / 10])), r('b', '1', true, [0.5]), r('b', '2', false, [0.4])];
    const t = bestOfNTable(rs, { ns: [2, 4, 8], draws: 3 });
    expect(t.results.map((x) => [x.n, x.problems_short])).toEqual([
      [2, 0],
      [4, 1],
      [8, 2],
    ]);
    expect(t.results[2]).toMatchObject({ best_of_n: 1, pass_at_n: 1, spread: 0 });
    expect(t.notes).toEqual([
      '1 of 2 problems have fewer than 4 responses; they use all they have',
      '2 of 2 problems have fewer than 8 responses; they use all they have',
    ]);
  });

  it('averages over draws: N = 1 from one right and one wrong response tends to 1/2', () => {
    const rs = Array.from({ length: 200 }, (_, p) => [r(`p${p}`, '1', true, [0.5]), r(`p${p}`, '2', false, [0.5])]).flat();
    const x = bestOfNTable(rs, { ns: [1], draws: 20, seed: 3 }).results[0] as BonRow;
    expect(x.best_of_n).toBeGreaterThan(0.4);
    expect(x.best_of_n).toBeLessThan(0.6);
    expect(x.spread).toBeGreaterThan(0);
    // With one response, the drawn methods agree with the response itself.
    expect(x.majority).toBe(x.best_of_n);
    // pass@1 is not drawn: each problem has 1 right of 2, so exactly 1/2, whatever the draws gave best-of-1.
    expect(x.pass_at_n).toBe(0.5);
  });

  it('is deterministic for a seed, and a row does not depend on the other Ns', () => {
    const rs = Array.from({ length: 30 }, (_, p) => Array.from({ length: 8 }, (_, i) => r(`p${p}`, String(i % 3), i % 3 === 0, [((p * 7 + i * 13) % 10) / 10]))).flat();
    const a = bestOfNTable(rs, { ns: [2, 4], draws: 5, seed: 42 });
    expect(bestOfNTable(rs, { ns: [2, 4], draws: 5, seed: 42 })).toEqual(a);
    expect(bestOfNTable(rs, { ns: [4], draws: 5, seed: 42 }).results[0]).toEqual(a.results[1]);
    expect(bestOfNTable(rs, { ns: [2, 4], draws: 5, seed: 43 }).results).not.toEqual(a.results);
    expect(BonTable.parse(a)).toEqual(a);
  });

  it('defaults to powers of two up to the largest count, ten draws, seed 0 and min', () => {
    const rs = Array.from({ length: 6 }, (_, i) => r('p', String(i), i === 0, [i]));
    expect(bestOfNTable(rs)).toMatchObject({ draws: 10, seed: 0, aggregate: 'min', problems: 1 });
    expect(bestOfNTable(rs).results.map((x) => x.n)).toEqual([1, 2, 4, 6]);
    expect(defaultNs(16)).toEqual([1, 2, 4, 8, 16]);
    expect(defaultNs(1)).toEqual([1]);
  });

  it('rejects bad options and an empty table', () => {
    const rs = [r('p', '1', true, [1])];
    expect(() => bestOfNTable(rs, { ns: [4, 2] })).toThrow(/ascending/);
    expect(() => bestOfNTable(rs, { ns: [2, 2] })).toThrow(/ascending/);
    expect(() => bestOfNTable(rs, { ns: [0] })).toThrow(BadInputError);
    expect(() => bestOfNTable(rs, { ns: [] })).toThrow(BadInputError);
    expect(() => bestOfNTable(rs, { draws: 0 })).toThrow(/draws/);
    expect(() => bestOfNTable([], {})).toThrow(/no responses/);
  });

  const table = fc
    .array(
      fc.record({
        problem: fc.integer({ min: 0, max: 5 }),
        answer: fc.option(fc.constantFrom('1', '2', '3'), { nil: null }),
        correct: fc.boolean(),
        scores: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
      }),
      { minLength: 1, maxLength: 60 },
    )
    .map((xs) => xs.map((x) => r(`p${x.problem}`, x.answer, x.correct, x.scores)));

  it('gives the exact pass@N, not one draw\'s: one right of four at N = 2 is 1/2 with a single draw', () => {
    const rs = [r('p', '1', false, [0.1]), r('p', '2', true, [0.2]), r('p', '3', false, [0.3]), r('p', '4', false, [0.4])];
    for (const seed of [0, 1, 2, 3, 4]) expect(bestOfNTable(rs, { ns: [2], draws: 1, seed }).results[0]?.pass_at_n).toBe(0.5);
    // A second problem, two right of five. N = 2: p gives 1/2, q 1 − C(3,2)/C(5,2) = 0.7; N = 3: p gives
    // 1 − C(3,3)/C(4,3) = 3/4, q 1 − C(3,3)/C(5,3) = 0.9.
    const two = [...rs, ...[true, false, true, false, false].map((ok, i) => r('q', String(i), ok, [0.5]))];
    const t = bestOfNTable(two, { ns: [2, 3], draws: 3 });
    expect(t.results[0]?.pass_at_n).toBeCloseTo((0.5 + 0.7) / 2, 12);
    expect(t.results[1]?.pass_at_n).toBeCloseTo((0.75 + 0.9) / 2, 12);
  });

  it('keeps pass@N exact, rising with N, in [0, 1], above every method at the full pool, and spread 0 at the largest count or with one draw', () => {
    fc.assert(
      fc.property(table, fc.integer({ min: 1, max: 4 }), fc.nat(1000), fc.constantFrom(...Aggregation.options), (rs, draws, seed, aggregate) => {
        const counts = new Map<string, number>();
        for (const x of rs) counts.set(x.problem_id, (counts.get(x.problem_id) ?? 0) + 1);
        const max = Math.max(...counts.values());
        const t = bestOfNTable(rs, { draws, seed, aggregate });
        for (const x of t.results) {
          for (const v of [x.best_of_n, x.majority, x.weighted, x.pass_at_n]) {
            expect(v).toBeGreaterThanOrEqual(0);
            expect(v).toBeLessThanOrEqual(1);
          }
          // pass@N is the exact mean over every N-subset, worked out here with exact binomials.
          const problems = [...new Set(rs.map((y) => y.problem_id))].map((id) => rs.filter((y) => y.problem_id === id));
          const exact = problems.reduce((sum, p) => sum + exactPassAtN(p.length, p.filter((y) => y.correct).length, x.n), 0) / problems.length;
          expect(x.pass_at_n).toBeCloseTo(exact, 12);
          if (draws === 1) expect(x.spread).toBe(0);
        }
        for (let i = 1; i < t.results.length; i++) expect(t.results[i]!.pass_at_n).toBeGreaterThanOrEqual(t.results[i - 1]!.pass_at_n - 1e-12);
        // At the full pool nothing is drawn: each method's right problems are a subset of pass@N's.
        const full = t.results.at(-1)!;
        expect(full).toMatchObject({ n: max, spread: 0 });
        for (const v of [full.best_of_n, full.majority, full.weighted]) expect(full.pass_at_n).toBeGreaterThanOrEqual(v - 1e-12);
      }),
    );
  });
});

/** 1 − C(total − correct, n)/C(total, n) with exact integer binomials: the reference passAtN is checked against. */
function exactPassAtN(total: number, correct: number, n: number): number {
  const choose = (a: number, b: number): bigint => {
    if (b < 0 || b > a) return 0n;
    let x = 1n;
    for (let i = 0; i < b; i++) x = (x * BigInt(a - i)) / BigInt(i + 1);
    return x;
  };
  const k = Math.min(n, total);
  const scale = 10n ** 30n;
  return 1 - Number((choose(total - correct, k) * scale) / choose(total, k)) / 1e30;
}

describe('passAtN', () => {
  it('is 1 − C(n−c, N)/C(n, N) on hand-worked cases', () => {
    expect(passAtN(4, 1, 2)).toBeCloseTo(1 - 3 / 6, 15); // C(3,2) / C(4,2)
    expect(passAtN(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 15); // C(3,2) / C(5,2)
    expect(passAtN(10, 3, 4)).toBeCloseTo(1 - 35 / 210, 15); // C(7,4) / C(10,4)
    expect(passAtN(64, 1, 16)).toBeCloseTo(16 / 64, 15); // one right response: the chance it is drawn
    expect(passAtN(16, 4, 1)).toBe(4 / 16); // pass@1 is the share of right responses
    expect(passAtN(1000, 1, 500)).toBeCloseTo(0.5, 12);
  });

  it('is 0 with no right response, 1 when every N-subset holds one, and uses the whole pool when N ≥ n', () => {
    expect(passAtN(8, 0, 4)).toBe(0);
    expect(passAtN(8, 8, 4)).toBe(1);
    expect(passAtN(4, 3, 2)).toBe(1); // one wrong response cannot fill two places
    expect(passAtN(3, 1, 8)).toBe(1);
    expect(passAtN(3, 0, 8)).toBe(0);
  });

  it('stays stable where the binomials overflow a double', () => {
    // C(10000, 5000) ≈ 10^3008: factorials would be Infinity / Infinity = NaN.
    expect(passAtN(10_000, 5000, 5000)).toBe(1);
    expect(passAtN(10_000, 1, 5000)).toBeCloseTo(0.5, 12);
    expect(passAtN(2000, 10, 64)).toBeCloseTo(exactPassAtN(2000, 10, 64), 12);
  });

  it('agrees with exact integer binomials everywhere on small pools', () => {
    for (let total = 1; total <= 20; total++) {
      for (let correct = 0; correct <= total; correct++) {
        for (let n = 1; n <= 22; n++) expect(passAtN(total, correct, n)).toBeCloseTo(exactPassAtN(total, correct, n), 12);
      }
    }
  });

  it('rejects counts that cannot be', () => {
    expect(() => passAtN(4, 5, 2)).toThrow(RangeError);
    expect(() => passAtN(4, 1, 0)).toThrow(RangeError);
    expect(() => passAtN(4, 1.5, 2)).toThrow(RangeError);
  });
});

describe('rewardHackingFlag', () => {
  it('flags a curve that rises then falls, at its peak', () => {
    const rows = [row(1, 0.6, 0.01), row(4, 0.7, 0.01), row(16, 0.75, 0.01), row(64, 0.7, 0)];
    expect(rewardHackingFlag(rows)).toEqual({ peak_n: 16, peak: 0.75, last_n: 64, last: 0.7 });
  });

  it('stays null on a monotone rising curve, a single row, or a dip within the noise', () => {
    expect(rewardHackingFlag([row(1, 0.6), row(2, 0.65), row(4, 0.7)])).toBeNull();
    expect(rewardHackingFlag([row(1, 0.6)])).toBeNull();
    expect(rewardHackingFlag([])).toBeNull();
    // A 0.02 dip where the peak's draws spread by 0.03; and a 0.004 dip under the 0.005 floor.
    expect(rewardHackingFlag([row(1, 0.6, 0.03), row(4, 0.72, 0.03), row(8, 0.7, 0)])).toBeNull();
    expect(rewardHackingFlag([row(1, 0.6), row(4, 0.704), row(8, 0.7)])).toBeNull();
  });

  it('takes the smallest N reaching the maximum as the peak', () => {
    expect(rewardHackingFlag([row(1, 0.8), row(2, 0.8), row(4, 0.7)])).toMatchObject({ peak_n: 1, last_n: 4 });
  });

  it('is set on a table built from a constructed hacking problem set', () => {
    // Each problem: one right response scored 0.8 and wrong ones scored 0.1, except one wrong "hack"
    // scored 0.9. Small N rarely includes the hack; the full pool always does, so accuracy falls.
    const rs = Array.from({ length: 40 }, (_, p) => [
      r(`p${p}`, 'right', true, [0.8]),
      ...Array.from({ length: 6 }, (_, i) => r(`p${p}`, `w${i}`, false, [0.1])),
      r(`p${p}`, 'hack', false, [0.9]),
    ]).flat();
    const t = bestOfNTable(rs, { ns: [1, 2, 4, 8], draws: 10, seed: 1 });
    expect(t.results.at(-1)?.best_of_n).toBe(0);
    expect(t.reward_hacking).toMatchObject({ last_n: 8, last: 0 });
    expect(t.reward_hacking?.peak_n).toBeLessThan(8);
    expect(bonTableMarkdown(t)).toMatch(/Reward hacking: best-of-N falls from 0\.\d{3} at N = \d+ to 0\.000 at N = 8\./);
  });
});
