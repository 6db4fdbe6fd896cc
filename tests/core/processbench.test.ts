// ProcessBench's metric on hand-made cases: the predicted first error, per-subset accuracies and F1, the threshold
// sweep and its choice, and pairing score lines with records.
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../core/errors.js';
import {
  BenchmarkRecord,
  evaluateAt,
  harmonicMean,
  joinScores,
  predictedErrorStep,
  subsetResult,
  sweepThresholds,
  SWEEP,
  type BenchmarkSubset,
  type ScoredSubset,
} from '../../core/processbench.js';

describe('predictedErrorStep', () => {
  it('is the first step scored below the threshold, strictly', () => {
    expect(predictedErrorStep([0.9, 0.3, 0.1], 0.5)).toBe(1);
    expect(predictedErrorStep([0.2, 0.9], 0.5)).toBe(0);
    expect(predictedErrorStep([0.5, 0.5], 0.5)).toBe(-1);
    expect(predictedErrorStep([0.9, 0.6], 0.5)).toBe(-1);
  });
  it('flags nothing at threshold 0 and everything below 1 at threshold 1', () => {
    expect(predictedErrorStep([0, 0.2], 0)).toBe(-1);
    expect(predictedErrorStep([1, 0.99], 1)).toBe(1);
  });
});

describe('harmonicMean', () => {
  it('is 2ab/(a+b), and 0 when both are 0', () => {
    expect(harmonicMean(0.5, 1)).toBeCloseTo(2 / 3, 12);
    expect(harmonicMean(0.4, 0.4)).toBeCloseTo(0.4, 12);
    expect(harmonicMean(0, 1)).toBe(0);
    expect(harmonicMean(0, 0)).toBe(0);
  });
});

// Four records with an error (labels 1, 0, 2, 1) and two error-free ones.
const subset: ScoredSubset = {
  subset: 'gsm8k',
  records: [
    { label: 1, scores: [0.9, 0.2, 0.1] }, // found at 0.5
    { label: 0, scores: [0.4, 0.8] }, // found at 0.5
    { label: 2, scores: [0.9, 0.3, 0.1] }, // too early at 0.5 (step 1), right at 0.25
    { label: 1, scores: [0.9, 0.9, 0.9] }, // missed at every threshold below 0.9
    { label: -1, scores: [0.9, 0.7] }, // error-free at 0.5
    { label: -1, scores: [0.9, 0.45] }, // flagged at 0.5, error-free at 0.25
  ],
};

describe('subsetResult', () => {
  it('scores exact first-error matches and error-free predictions apart, with their harmonic mean', () => {
    const r = subsetResult(subset, 0.5);
    expect(r).toEqual({ subset: 'gsm8k', error_accuracy: 0.5, correct_accuracy: 0.5, f1: 0.5, n: 6 });
    const low = subsetResult(subset, 0.25);
    // Found: label 1 (0.2 < 0.25), label 2 (0.1 at step 2); missed: label 0 (0.4), the last; both error-free right.
    expect(low.error_accuracy).toBe(0.5);
    expect(low.correct_accuracy).toBe(1);
    expect(low.f1).toBeCloseTo(2 / 3, 12);
  });
  it('counts a too-early or too-late prediction as wrong, not only a missed one', () => {
    const r = subsetResult({ subset: 's', records: [{ label: 2, scores: [0.9, 0.1, 0.1] }, { label: 0, scores: [0.9, 0.1] }, { label: -1, scores: [0.9] }] }, 0.5);
    expect(r.error_accuracy).toBe(0);
    expect(r.f1).toBe(0);
  });
  it('refuses a subset without both kinds of record, naming it', () => {
    expect(() => subsetResult({ subset: 'math', records: [{ label: -1, scores: [0.9] }] }, 0.5)).toThrow(BadInputError);
    expect(() => subsetResult({ subset: 'math', records: [{ label: -1, scores: [0.9] }] }, 0.5)).toThrow('subset "math" has no records with an error');
    expect(() => subsetResult({ subset: 'omni', records: [{ label: 0, scores: [0.1] }] }, 0.5)).toThrow('subset "omni" has no records error-free');
  });
});

describe('evaluateAt', () => {
  it('averages F1 over subsets (not over records)', () => {
    const perfect: ScoredSubset = { subset: 'math', records: [{ label: 0, scores: [0.1] }, { label: -1, scores: [0.9] }] };
    const out = evaluateAt([subset, perfect], 0.5);
    expect(out.threshold).toBe(0.5);
    expect(out.subsets.map((s) => s.f1)).toEqual([0.5, 1]);
    expect(out.average_f1).toBe(0.75);
    expect(Object.keys(out)).toEqual(['threshold', 'subsets', 'average_f1']);
    expect(Object.keys(out.subsets[0] as object)).toEqual(['subset', 'error_accuracy', 'correct_accuracy', 'f1', 'n']);
  });
});

describe('sweepThresholds', () => {
  // On gsm8k the best F1 is at low thresholds; on math only a high threshold finds the error.
  const math: ScoredSubset = { subset: 'math', records: [{ label: 0, scores: [0.85] }, { label: -1, scores: [0.95] }] };

  it('tunes on gsm8k when present, whatever the other subsets prefer, and marks the lowest of tied thresholds', () => {
    const sweep = sweepThresholds([math, subset]);
    expect(sweep.tunedOn).toBe('gsm8k');
    expect(sweep.rows.map((r) => r.threshold)).toEqual(SWEEP);
    // gsm8k's F1 peaks at 2/3 at 0.25, 0.30 and 0.45 (labels 1 and 2, or 1 and 0, found; both error-free kept): 0.25 wins.
    expect(sweep.chosen.threshold).toBe(0.25);
    expect(sweep.chosen.subsets.find((s) => s.subset === 'gsm8k')?.f1).toBeCloseTo(2 / 3, 12);
    expect(sweep.fixed).toBe(false);
  });

  it('tunes on the first subset when there is no gsm8k', () => {
    const sweep = sweepThresholds([math, { ...subset, subset: 'other' }]);
    expect(sweep.tunedOn).toBe('math');
    expect(sweep.chosen.threshold).toBe(0.9);
  });

  it('uses a fixed threshold as given, adding it to the sweep in order', () => {
    const sweep = sweepThresholds([subset], 0.33);
    expect(sweep.fixed).toBe(true);
    expect(sweep.chosen.threshold).toBe(0.33);
    const ts = sweep.rows.map((r) => r.threshold);
    expect(ts).toHaveLength(SWEEP.length + 1);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(sweepThresholds([subset], 0.5).rows).toHaveLength(SWEEP.length);
  });

  it('refuses no subsets', () => {
    expect(() => sweepThresholds([])).toThrow('no subsets');
  });
});

describe('BenchmarkRecord', () => {
  const record = { id: 'gsm8k-0', generator: 'g', problem: 'p', steps: ['a', 'b'], final_answer_correct: false, label: 1 };
  it('takes ProcessBench records, -1 included', () => {
    expect(BenchmarkRecord.safeParse(record).success).toBe(true);
    expect(BenchmarkRecord.safeParse({ ...record, label: -1 }).success).toBe(true);
  });
  it('refuses a label past the last step, below -1, or no steps', () => {
    expect(BenchmarkRecord.safeParse({ ...record, label: 2 }).error?.issues[0]?.path).toEqual(['label']);
    expect(BenchmarkRecord.safeParse({ ...record, label: -2 }).success).toBe(false);
    expect(BenchmarkRecord.safeParse({ ...record, steps: [] }).success).toBe(false);
  });
});

describe('joinScores', () => {
  const rec = (id: string, steps: number, label: number) => ({ id, generator: 'g', problem: 'p', steps: Array(steps).fill('s'), final_answer_correct: true, label });
  const bench: BenchmarkSubset[] = [
    { subset: 'gsm8k', records: [rec('a', 2, 1), rec('b', 1, -1)] },
    { subset: 'math', records: [rec('a', 3, -1)] },
  ];
  const where = (line: number) => `f.jsonl:${line}`;
  const line = (n: number, subset: string, id: string, step_scores: number[]) => ({ line: n, value: { subset, id, step_scores } });

  it('pairs lines with records by subset and id, in the benchmark order, whatever the line order', () => {
    const joined = joinScores(bench, [line(1, 'math', 'a', [0.1, 0.2, 0.3]), line(2, 'gsm8k', 'b', [0.5]), line(4, 'gsm8k', 'a', [0.9, 0.1])], where);
    expect(joined).toEqual([
      { subset: 'gsm8k', records: [{ label: 1, scores: [0.9, 0.1] }, { label: -1, scores: [0.5] }] },
      { subset: 'math', records: [{ label: -1, scores: [0.1, 0.2, 0.3] }] },
    ]);
  });
  it('names the line of a wrong-length, unknown or repeated score line', () => {
    const ok = [line(1, 'gsm8k', 'b', [0.5]), line(2, 'math', 'a', [0.1, 0.2, 0.3])];
    expect(() => joinScores(bench, [...ok, line(3, 'gsm8k', 'a', [0.9])], where)).toThrow('f.jsonl:3: record gsm8k/a has 2 steps but 1 scores');
    expect(() => joinScores(bench, [...ok, line(3, 'gsm8k', 'zz', [0.9])], where)).toThrow('f.jsonl:3: no record "zz" in subset "gsm8k"');
    expect(() => joinScores(bench, [...ok, line(3, 'gsm8k', 'b', [0.5])], where)).toThrow('f.jsonl:3: record gsm8k/b is scored again (first at f.jsonl:1)');
  });
  it('names the records that have no score line', () => {
    expect(() => joinScores(bench, [line(1, 'gsm8k', 'b', [0.5])], where)).toThrow('no score line for record gsm8k/a, math/a: every record');
  });
});
