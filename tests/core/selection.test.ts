// Steps, aggregation and selection: the pure core of one RAFT iteration.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregateStepScores } from '../../core/aggregate.js';
import {
  emptySelectionStats,
  meanSelectedScore,
  mergeSelectionStats,
  selectionStatsOf,
  selectTopResponse,
  SelectionConfig,
  type Candidate,
} from '../../core/selection.js';
import { splitSteps, stepSpans, StepSplitConfig } from '../../core/steps.js';

const c = (index: number, score: number, extra: Partial<Candidate> = {}): Candidate => ({
  index,
  score,
  finishReason: 'stop',
  extracted: '1',
  correct: false,
  ...extra,
});
const prm = SelectionConfig.parse({});

describe('splitSteps', () => {
  it('splits by line, dropping blank lines and edge whitespace', () => {
    expect(splitSteps(' 1 + 2 = 3\r\n\n3 * 4 = 12 \n#### 12\n', { by: 'newline' })).toEqual(['1 + 2 = 3', '3 * 4 = 12', '#### 12']);
  });
  it('splits by blank line, keeping multi-line steps whole', () => {
    expect(splitSteps('a\nb\n\n  \nc', { by: 'blank-line' })).toEqual(['a\nb', 'c']);
  });
  it('splits by a regex', () => {
    expect(splitSteps('Step 1: x. Step 2: y.', { by: 'regex', pattern: 'Step \\d+:' })).toEqual(['x.', 'y.']);
  });
  it('ends each step after its separator, so a prefix is the response as written', () => {
    const text = 'a\n\n b\nc';
    expect(stepSpans(text, { by: 'newline' }).map((s) => text.slice(0, s.end))).toEqual(['a\n', 'a\n\n b\n', text]);
    const steps = 'Step 1: x. Step 2: y.';
    expect(stepSpans(steps, { by: 'regex', pattern: 'Step \\d+:' }).map((s) => steps.slice(0, s.end))).toEqual(['Step 1: x. Step 2:', steps]);
  });
  it('gives no steps for an empty response', () => {
    expect(splitSteps('\n \n', { by: 'newline' })).toEqual([]);
  });
  it('rejects an invalid regex in the config', () => {
    expect(StepSplitConfig.safeParse({ by: 'regex', pattern: '(' }).success).toBe(false);
  });
  it('never yields an empty step and loses no non-space character', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const steps = splitSteps(text, { by: 'newline' });
        expect(steps.every((s) => s.length > 0 && s === s.trim())).toBe(true);
        expect(steps.join('').replace(/\s/g, '')).toBe(text.replace(/\s/g, ''));
      }),
    );
  });
});

describe('aggregateStepScores', () => {
  it('computes min, last, mean and prod', () => {
    const s = [0.9, 0.5, 0.8];
    expect(aggregateStepScores(s, 'min')).toBe(0.5);
    expect(aggregateStepScores(s, 'last')).toBe(0.8);
    expect(aggregateStepScores(s, 'mean')).toBeCloseTo(2.2 / 3);
    expect(aggregateStepScores(s, 'prod')).toBeCloseTo(0.36);
  });
  it('gives NaN for no steps', () => {
    expect(aggregateStepScores([], 'min')).toBeNaN();
  });
  it('keeps every aggregate of scores in [0,1] inside [0,1], and prod ≤ min ≤ mean', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1 }), (s) => {
        const [min, mean, prod] = [aggregateStepScores(s, 'min'), aggregateStepScores(s, 'mean'), aggregateStepScores(s, 'prod')];
        for (const x of [min, mean, prod, aggregateStepScores(s, 'last')]) expect(x >= 0 && x <= 1).toBe(true);
        expect(prod).toBeLessThanOrEqual(min + 1e-12);
        expect(min).toBeLessThanOrEqual(mean + 1e-12);
      }),
    );
  });
});

describe('selectTopResponse', () => {
  it('keeps the highest score', () => {
    expect(selectTopResponse([c(0, 0.2), c(1, 0.9), c(2, 0.5)], prm).selected?.index).toBe(1);
  });
  it('breaks ties by the lowest index, whatever the order', () => {
    expect(selectTopResponse([c(3, 0.7), c(1, 0.7), c(2, 0.1)], prm).selected?.index).toBe(1);
  });
  it('drops truncated and answerless responses when asked, and counts why', () => {
    const out = selectTopResponse([c(0, 0.99, { finishReason: 'length' }), c(1, 0.98, { extracted: null }), c(2, 0.1)], prm);
    expect(out.selected?.index).toBe(2);
    expect(Object.fromEntries(out.rejected)).toEqual({ truncated: 1, 'no-answer': 1 });
    const keepAll = selectTopResponse([c(0, 0.99, { finishReason: 'length' }), c(1, 0.1)], { ...prm, dropTruncated: false });
    expect(keepAll.selected?.index).toBe(0);
  });
  it('never selects an unscored response, and selects nothing when all fail', () => {
    expect(selectTopResponse([c(0, Number.NaN), c(1, 0.01)], prm).selected?.index).toBe(1);
    const none = selectTopResponse([c(0, Number.NaN), c(1, Number.NaN)], prm);
    expect(none.selected).toBeNull();
    expect(none.rejected.get('no-score')).toBe(2);
  });
  it('ignores correctness in prm mode', () => {
    expect(selectTopResponse([c(0, 0.3, { correct: true }), c(1, 0.4)], prm).selected?.index).toBe(1);
  });
  it('keeps a right answer in oracle mode, even an unscored one', () => {
    const oracle = { ...prm, mode: 'oracle' as const };
    expect(selectTopResponse([c(0, 0.9), c(1, Number.NaN, { correct: true }), c(2, 0.1, { correct: true })], oracle).selected?.index).toBe(1);
    expect(selectTopResponse([c(0, 0.9), c(1, 0.2)], oracle).selected).toBeNull();
  });
});

describe('selection stats', () => {
  it('adds prompts up: kept, mean and min score, precision, rejections', () => {
    const prompts: Candidate[][] = [
      [c(0, 0.9, { correct: true }), c(1, 0.2)],
      [c(0, 0.4), c(1, 0.6, { correct: false }), c(2, 0.1, { correct: true })],
      [c(0, Number.NaN), c(1, 0.5, { extracted: null })],
    ];
    const stats = prompts
      .map((p) => selectionStatsOf(p, selectTopResponse(p, prm)))
      .reduce(mergeSelectionStats, emptySelectionStats());
    expect(stats).toMatchObject({ prompts: 3, kept: 2, minSelectedScore: 0.6, selectedCorrect: 1, promptsWithACorrectResponse: 2, rejected: { 'no-score': 1, 'no-answer': 1 } });
    expect(meanSelectedScore(stats)).toBeCloseTo(0.75);
    expect(meanSelectedScore(emptySelectionStats())).toBeNull();
  });
});
