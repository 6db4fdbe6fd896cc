// Best-of-N statistics on hand-made score tables whose answers can be worked out by hand.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BonTable, bestOfNTable, bonTableMarkdown, defaultNs, rewardHackingFlag, type BonRow, type ScoredResponse } from '../../core/best-of-n.js';
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
    // With one response, every method agrees with the response itself.
    expect(x.majority).toBe(x.best_of_n);
    expect(x.pass_at_n).toBe(x.best_of_n);
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

  it('keeps pass@N above every method, all in [0, 1], and spread 0 at the largest count or with one draw', () => {
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
          // Per draw each method's right problems are a subset of pass@N's, so the means keep the order.
          expect(x.pass_at_n).toBeGreaterThanOrEqual(x.best_of_n - 1e-12);
          expect(x.pass_at_n).toBeGreaterThanOrEqual(x.majority - 1e-12);
          expect(x.pass_at_n).toBeGreaterThanOrEqual(x.weighted - 1e-12);
          if (draws === 1) expect(x.spread).toBe(0);
        }
        expect(t.results.at(-1)).toMatchObject({ n: max, spread: 0 });
      }),
    );
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
