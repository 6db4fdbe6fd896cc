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
/** Random mode's picks for prompts tinymath-train/0 … /7 at seed 0 among four responses, as first computed. */
const PINNED_PICKS = [1, 3, 3, 2, 3, 2, 3, 2];

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
    expect(selectTopResponse([c(0, 0.2), c(1, 0.9), c(2, 0.5)], prm, 'q').selected?.index).toBe(1);
  });
  it('breaks ties by the lowest index, whatever the order', () => {
    expect(selectTopResponse([c(3, 0.7), c(1, 0.7), c(2, 0.1)], prm, 'q').selected?.index).toBe(1);
  });
  it('drops truncated and answerless responses when asked, and counts why', () => {
    const out = selectTopResponse([c(0, 0.99, { finishReason: 'length' }), c(1, 0.98, { extracted: null }), c(2, 0.1)], prm, 'q');
    expect(out.selected?.index).toBe(2);
    expect(Object.fromEntries(out.rejected)).toEqual({ truncated: 1, 'no-answer': 1 });
    const keepAll = selectTopResponse([c(0, 0.99, { finishReason: 'length' }), c(1, 0.1)], { ...prm, dropTruncated: false }, 'q');
    expect(keepAll.selected?.index).toBe(0);
  });
  it('never selects an unscored response, and selects nothing when all fail', () => {
    expect(selectTopResponse([c(0, Number.NaN), c(1, 0.01)], prm, 'q').selected?.index).toBe(1);
    const none = selectTopResponse([c(0, Number.NaN), c(1, Number.NaN)], prm, 'q');
    expect(none.selected).toBeNull();
    expect(none.rejected.get('no-score')).toBe(2);
  });
  it('keeps the top response only when it reaches minScore, and counts the prompt it drops', () => {
    expect(selectTopResponse([c(0, 0.2), c(1, 0.6)], prm, 'q', 0.6).selected?.index).toBe(1);
    const low = selectTopResponse([c(0, 0.2), c(1, 0.59)], prm, 'q', 0.6);
    expect(low.selected).toBeNull();
    expect(Object.fromEntries(low.rejected)).toEqual({ 'below-min-score': 1 });
    // Only the modes that rank by score: a baseline ignores it.
    expect(selectTopResponse([c(0, 0.1, { correct: true })], { ...prm, mode: 'oracle' }, 'q', 0.6).selected?.index).toBe(0);
  });
  it('ignores correctness in prm mode', () => {
    expect(selectTopResponse([c(0, 0.3, { correct: true }), c(1, 0.4)], prm, 'q').selected?.index).toBe(1);
  });
  it('keeps a right answer in oracle mode, even an unscored one', () => {
    const oracle = { ...prm, mode: 'oracle' as const };
    expect(selectTopResponse([c(0, 0.9), c(1, Number.NaN, { correct: true }), c(2, 0.1, { correct: true })], oracle, 'q').selected?.index).toBe(1);
    expect(selectTopResponse([c(0, 0.9), c(1, 0.2)], oracle, 'q').selected).toBeNull();
  });
});

describe('selectTopResponse: random', () => {
  const random = SelectionConfig.parse({ mode: 'random' });
  const four = [c(0, Number.NaN), c(1, Number.NaN), c(2, Number.NaN), c(3, Number.NaN)];
  const pick = (cands: Candidate[], id: string, cfg = random) => selectTopResponse(cands, cfg, id).selected?.index;
  const ids = Array.from({ length: 4000 }, (_, i) => `tinymath-train/${i}`);

  it('picks the same response for the same seed and prompt, in whatever order the candidates come', () => {
    for (const id of ids.slice(0, 50)) expect(pick([...four].reverse(), id)).toBe(pick(four, id));
    // Pinned: a change to the generator would silently change every re-run's picks.
    expect(ids.slice(0, 8).map((id) => pick(four, id))).toEqual(PINNED_PICKS);
  });

  it('picks each eligible response about equally often across prompts', () => {
    const counts = [0, 0, 0, 0];
    for (const id of ids) counts[pick(four, id)!]! += 1;
    // 1000 expected each, standard deviation about 27: 5 of them either way.
    for (const n of counts) expect(Math.abs(n - 1000)).toBeLessThan(137);
  });

  it('changes its picks with the seed', () => {
    const seeded = { ...random, seed: 1 };
    const changed = ids.slice(0, 200).filter((id) => pick(four, id) !== pick(four, id, seeded)).length;
    // Three in four picks should change; far fewer means the seed barely enters.
    expect(changed).toBeGreaterThan(100);
  });

  it('picks only eligible responses, ignoring score and correctness, and nothing when none is eligible', () => {
    const cands = [c(0, 0.9, { finishReason: 'length', correct: true }), c(1, 0.9, { extracted: null, correct: true }), c(2, Number.NaN), c(3, 0.1)];
    const picks = new Set(ids.slice(0, 200).map((id) => pick(cands, id)));
    expect([...picks].sort()).toEqual([2, 3]);
    const none = selectTopResponse([c(0, 0.5, { extracted: null })], random, 'q');
    expect(none.selected).toBeNull();
    expect(Object.fromEntries(none.rejected)).toEqual({ 'no-answer': 1 });
  });
});

describe('selectTopResponse: majority', () => {
  const majority = SelectionConfig.parse({ mode: 'majority' });
  const answers = (xs: Array<string | null>, extra: Partial<Candidate> = {}) => xs.map((x, i) => c(i, Number.NaN, { extracted: x, ...extra }));
  const pick = (cands: Candidate[], cfg = majority) => selectTopResponse(cands, cfg, 'q').selected?.index;

  it('keeps the lowest-index response giving the most common answer, compared after trimming', () => {
    expect(pick(answers(['4', '5', '5', ' 4', '5']))).toBe(1);
    expect(pick(answers(['8', ' 7', '7 ']))).toBe(1);
  });

  it('breaks a tie between answers by the lowest index of each answer, whatever the order', () => {
    const tied = answers(['c', 'b', 'a', 'b', 'a']);
    expect(pick(tied)).toBe(1);
    expect(pick([...tied].reverse())).toBe(1);
  });

  it('counts only eligible responses, lets answerless ones not vote, and ignores correctness', () => {
    const cutOff = [...answers(['5', '5'], { finishReason: 'length' }), c(2, 0, { extracted: '4' }), c(3, 0, { extracted: '6', correct: true })];
    expect(pick(cutOff)).toBe(2);
    const keepAll = { ...majority, dropNoAnswer: false };
    const out = selectTopResponse(answers([null, null, '3']), keepAll, 'q');
    expect(out.selected?.index).toBe(2);
    expect(Object.fromEntries(out.rejected)).toEqual({ 'no-answer': 2 });
    expect(pick(answers([null]), keepAll)).toBeUndefined();
  });
});

describe('selection config', () => {
  it('defaults to prm mode and seed 0, and refuses a negative seed or an unknown mode', () => {
    expect(SelectionConfig.parse({})).toEqual({ mode: 'prm', seed: 0, dropNoAnswer: true, dropTruncated: true });
    expect(SelectionConfig.safeParse({ seed: -1 }).success).toBe(false);
    expect(SelectionConfig.safeParse({ seed: 1.5 }).success).toBe(false);
    expect(SelectionConfig.safeParse({ mode: 'best' }).success).toBe(false);
  });
});

describe('selection stats', () => {
  // By hand: eligible after dropping truncated and answerless responses; random = right share of eligible;
  // majority = is the most common eligible answer right.
  const prompts: Candidate[][] = [
    // eligible 0,1,2: right share 1/3; majority "5" (wrong); prm keeps 0 (right).
    [c(0, 0.9, { extracted: '4', correct: true }), c(1, 0.2, { extracted: '5' }), c(2, 0.5, { extracted: '5' }), c(3, 0.1, { extracted: '4', correct: true, finishReason: 'length' })],
    // eligible all: right share 2/3; majority "7" (right); prm keeps 2 (wrong).
    [c(0, 0.4, { extracted: '7', correct: true }), c(1, 0.6, { extracted: '7', correct: true }), c(2, 0.8, { extracted: '9' })],
    // eligible 1 only: share 0; majority and prm keep 1 (wrong).
    [c(0, Number.NaN, { extracted: null }), c(1, 0.3, { extracted: '2' })],
    // nothing eligible.
    [c(0, 0.5, { extracted: null, finishReason: 'length' })],
  ];
  const statsIn = (cfg: SelectionConfig) => prompts.map((p, i) => selectionStatsOf(p, selectTopResponse(p, cfg, `q${i}`), cfg)).reduce(mergeSelectionStats, emptySelectionStats());

  it('adds up the kept responses and, from the same candidates, what random, majority and oracle would get', () => {
    const stats = statsIn(prm);
    expect(stats).toMatchObject({
      prompts: 4,
      kept: 3,
      minSelectedScore: 0.3,
      selectedCorrect: 1,
      promptsWithACorrectResponse: 2,
      majorityCorrect: 1,
      rejected: { truncated: 2, 'no-answer': 1 },
    });
    expect(stats.randomExpectedCorrect).toBeCloseTo(1 / 3 + 2 / 3);
    expect(meanSelectedScore(stats)).toBeCloseTo((0.9 + 0.8 + 0.3) / 3);
  });

  it('computes the baselines the same in every mode, and each baseline mode keeps what its count says', () => {
    const byMode = Object.fromEntries((['prm', 'oracle', 'random', 'majority'] as const).map((mode) => [mode, statsIn({ ...prm, mode })]));
    for (const s of Object.values(byMode)) {
      expect(s).toMatchObject({ promptsWithACorrectResponse: 2, majorityCorrect: 1 });
      expect(s.randomExpectedCorrect).toBeCloseTo(1);
    }
    expect(byMode.majority!.selectedCorrect).toBe(1);
    expect(byMode.oracle!.selectedCorrect).toBe(2);
  });

  it('gets, on average over seeds, the expected right picks of a random pick', () => {
    const p = prompts[1]!;
    let right = 0;
    for (let seed = 0; seed < 3000; seed++) right += selectTopResponse(p, { ...prm, mode: 'random', seed }, 'q1').selected?.correct ? 1 : 0;
    expect(right / 3000).toBeCloseTo(selectionStatsOf(p, selectTopResponse(p, prm, 'q1'), prm).randomExpectedCorrect, 1);
  });

  it('adds prompts up: kept, mean and min score, precision, rejections', () => {
    const prompts: Candidate[][] = [
      [c(0, 0.9, { correct: true }), c(1, 0.2)],
      [c(0, 0.4), c(1, 0.6, { correct: false }), c(2, 0.1, { correct: true })],
      [c(0, Number.NaN), c(1, 0.5, { extracted: null })],
    ];
    const stats = prompts
      .map((p, i) => selectionStatsOf(p, selectTopResponse(p, prm, `q${i}`), prm))
      .reduce(mergeSelectionStats, emptySelectionStats());
    expect(stats).toMatchObject({ prompts: 3, kept: 2, minSelectedScore: 0.6, selectedCorrect: 1, promptsWithACorrectResponse: 2, rejected: { 'no-score': 1, 'no-answer': 1 } });
    expect(meanSelectedScore(stats)).toBeCloseTo(0.75);
    expect(meanSelectedScore(emptySelectionStats())).toBeNull();
  });
});

describe('selectTopResponse: prl', () => {
  const prl = SelectionConfig.parse({ mode: 'prl' });
  it('keeps the top PRL value (negative values too), ties to the lowest index, and never a response without one', () => {
    // PRL values are r ± KL/η, not in [0, 1]: a right answer drifted far from π0 can rank below a wrong one.
    expect(selectTopResponse([c(0, 0.2, { correct: true }), c(1, 1.3, { correct: true }), c(2, -0.4)], prl, 'p').selected?.index).toBe(1);
    expect(selectTopResponse([c(2, 0.9), c(0, 0.9), c(1, -5)], prl, 'p').selected?.index).toBe(0);
    const out = selectTopResponse([c(0, Number.NaN), c(1, -2)], prl, 'p');
    expect(out.selected?.index).toBe(1);
    expect(Object.fromEntries(out.rejected)).toEqual({ 'no-score': 1 });
    expect(selectTopResponse([c(0, Number.NaN)], prl, 'p').selected).toBeNull();
  });
  it('drops a truncated response or one without an answer before ranking, like every mode', () => {
    const out = selectTopResponse([c(0, 9, { finishReason: 'length' }), c(1, 8, { extracted: null }), c(2, 1)], prl, 'p');
    expect(out.selected?.index).toBe(2);
    expect(Object.fromEntries(out.rejected)).toEqual({ truncated: 1, 'no-answer': 1 });
  });
  it('reports the baselines beside its own right picks, and the mean PRL value picked', () => {
    const candidates = [c(0, 0.5, { correct: true, extracted: '4' }), c(1, 0.1, { extracted: '5' }), c(2, 0.9, { correct: true, extracted: '4' })];
    const stats = selectionStatsOf(candidates, selectTopResponse(candidates, prl, 'p'), prl);
    expect(stats).toMatchObject({ kept: 1, scored: 1, scoreSum: 0.9, selectedCorrect: 1, promptsWithACorrectResponse: 1, majorityCorrect: 1 });
    expect(stats.randomExpectedCorrect).toBeCloseTo(2 / 3);
  });
});
