// PRL labels (issue 14): the formula on a hand-computed case, η → ∞, the sign of the KL term, both step boundaries,
// steps on tokens (including a step that ends mid-token) and bad input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../core/errors.js';
import {
  fixedBlockStepEnds,
  LogprobLine,
  PrlLabelRecord,
  PrlResponse,
  prlLabels,
  prlResponse,
  prlResponseScore,
  PrlSteps,
  prlStepValues,
  responseStepTokenEnds,
  stepTokenEnds,
} from '../../core/prl.js';

// Five tokens in three steps: tokens [0,1] | [2,3] | [4]. Log-ratios d = lp − ref = [0.5, −0.2, 0.3, 0.1, 0.4].
const hand: PrlResponse = {
  id: 'q1/0',
  promptId: 'q1',
  stepEnds: [2, 4, 5],
  logprobs: [-0.5, -1.2, -0.7, -0.9, -0.1],
  refLogprobs: [-1.0, -1.0, -1.0, -1.0, -0.5],
  outcome: 1,
};

describe('prlStepValues on a hand-computed case', () => {
  it("follows the paper: r − (1/η)·Σ of the log-ratios of the tokens after the step ('after-step')", () => {
    // η = 2. After step 1: d2+d3+d4 = 0.3+0.1+0.4 = 0.8 → 1 − 0.4 = 0.6; after step 2: d4 = 0.4 → 1 − 0.2 = 0.8;
    // after step 3 (the last): nothing is left → exactly r = 1.
    const v = prlStepValues(hand, 2);
    expect(v[0]).toBeCloseTo(0.6, 12);
    expect(v[1]).toBeCloseTo(0.8, 12);
    expect(v[2]).toBe(1);
  });

  it("follows the authors' code with 'from-step-end-token': the step's own last token is counted too", () => {
    // η = 2. From token 1: d1+…+d4 = −0.2+0.8 = 0.6 → 1 − 0.3 = 0.7; from token 3: 0.1+0.4 = 0.5 → 0.75;
    // from token 4: 0.4 → 0.8 (not exactly r).
    const v = prlStepValues(hand, 2, 'from-step-end-token');
    expect(v[0]).toBeCloseTo(0.7, 12);
    expect(v[1]).toBeCloseTo(0.75, 12);
    expect(v[2]).toBeCloseTo(0.8, 12);
  });

  it('gives the whole response r − (1/η)·ln[π(a|x)/π0(a|x)] and the minimum over steps, both named', () => {
    // ln π/π0 over the response: 0.5−0.2+0.3+0.1+0.4 = 1.1; η = 2 → 1 − 0.55 = 0.45.
    const labels = prlLabels(hand, 2);
    expect(labels.logRatio).toBeCloseTo(1.1, 12);
    expect(labels.sequence).toBeCloseTo(0.45, 12);
    expect(labels.minStep).toBeCloseTo(0.6, 12);
    expect(prlResponseScore(labels, 'sequence')).toBeCloseTo(0.45, 12);
    expect(prlResponseScore(labels, 'min-step')).toBeCloseTo(0.6, 12);
    expect(PrlLabelRecord.parse(labels)).toEqual(labels);
  });

  it('has no min-step score for a response without steps, and its sequence value is still defined', () => {
    const labels = prlLabels({ ...hand, stepEnds: [] }, 2);
    expect(labels.stepValues).toEqual([]);
    expect(labels.minStep).toBeNull();
    expect(prlResponseScore(labels, 'min-step')).toBeNull();
    expect(labels.sequence).toBeCloseTo(0.45, 12);
  });

  it('counts tokens after the last step as still to come', () => {
    // Steps cover tokens 0..3 only; the last step's value then pays for token 4.
    expect(prlStepValues({ ...hand, stepEnds: [2, 4] }, 2)[1]).toBeCloseTo(0.8, 12);
  });
});

const response = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    id: fc.constant('p/0'),
    promptId: fc.constant('p'),
    logprobs: fc.array(fc.double({ min: -20, max: 0, noNaN: true }), { minLength: n, maxLength: n }),
    refLogprobs: fc.array(fc.double({ min: -20, max: 0, noNaN: true }), { minLength: n, maxLength: n }),
    stepEnds: fc.uniqueArray(fc.integer({ min: 1, max: n }), { minLength: 1, maxLength: n }).map((e) => e.sort((a, b) => a - b)),
    outcome: fc.constantFrom(0, 1),
  }),
);

describe('limits and signs', () => {
  it('gives the outcome reward at every step as η → ∞ (exactly at η = +Infinity)', () => {
    fc.assert(
      fc.property(response, (r) => {
        for (const boundary of ['after-step', 'from-step-end-token'] as const) {
          expect(prlStepValues(r, Infinity, boundary).every((v) => v === r.outcome)).toBe(true);
          for (const v of prlStepValues(r, 1e12, boundary)) expect(Math.abs(v - r.outcome)).toBeLessThan(1e-9);
        }
        expect(prlLabels(r, Infinity).sequence).toBe(r.outcome);
      }),
    );
  });

  it('penalises drift: a response the policy made more likely than π0 scores below r, a less likely one above', () => {
    const drifted: PrlResponse = { ...hand, logprobs: [-0.1, -0.1, -0.1, -0.1, -0.1], refLogprobs: [-2, -2, -2, -2, -2] };
    const v = prlLabels(drifted, 1);
    expect(v.stepValues.slice(0, -1).every((x) => x < drifted.outcome)).toBe(true);
    expect(v.sequence).toBeLessThan(drifted.outcome);
    const away: PrlResponse = { ...hand, logprobs: drifted.refLogprobs, refLogprobs: drifted.logprobs };
    const w = prlLabels(away, 1);
    expect(w.stepValues.slice(0, -1).every((x) => x > away.outcome)).toBe(true);
    expect(w.sequence).toBeGreaterThan(away.outcome);
    // A smaller η (a stronger KL term) moves the value further from r.
    expect(prlLabels(drifted, 0.5).sequence).toBeLessThan(v.sequence);
  });

  it('is r at every step when π = π0, for any η', () => {
    fc.assert(
      fc.property(response, fc.double({ min: 1e-3, max: 1e3, noNaN: true }), (r, eta) => {
        const same = { ...r, refLogprobs: r.logprobs };
        expect(prlStepValues(same, eta).every((v) => v === r.outcome)).toBe(true);
      }),
    );
  });

  it('is the sum law: the value rises by (1/η)·d over each later step, up to r at the end', () => {
    fc.assert(
      fc.property(response, fc.double({ min: 0.1, max: 100, noNaN: true }), (r, eta) => {
        const v = prlStepValues(r, eta);
        const ends = [...r.stepEnds];
        for (let l = 1; l < v.length; l += 1) {
          let between = 0;
          for (let t = ends[l - 1] as number; t < (ends[l] as number); t += 1) between += (r.logprobs[t] as number) - (r.refLogprobs[t] as number);
          expect((v[l] as number) - (v[l - 1] as number)).toBeCloseTo(between / eta, 6);
        }
        if (ends.at(-1) === r.logprobs.length) expect(v.at(-1)).toBe(r.outcome);
      }),
    );
  });
});

describe('bad input', () => {
  it('rejects a length mismatch between the two policies with a clear message', () => {
    const bad = { ...hand, refLogprobs: hand.refLogprobs.slice(0, 4) };
    expect(() => prlStepValues(bad, 2)).toThrow(BadInputError);
    expect(() => prlStepValues(bad, 2)).toThrow(/response q1\/0: 5 token log-probs under the current policy but 4 under the initial policy/);
  });
  it('rejects steps past the tokens, decreasing or zero step ends', () => {
    expect(() => prlStepValues({ ...hand, stepEnds: [2, 6] }, 2)).toThrow(/step 2 ends at token 6.*\[1, 5\].*5 tokens/);
    expect(() => prlStepValues({ ...hand, stepEnds: [3, 2] }, 2)).toThrow(/step 2 ends at token 2/);
    expect(() => prlStepValues({ ...hand, stepEnds: [0, 2] }, 2)).toThrow(/step 1 ends at token 0/);
  });
  it('rejects η ≤ 0 or NaN, positive or non-finite log-probs and a non-finite outcome', () => {
    for (const eta of [0, -1, Number.NaN]) expect(() => prlStepValues(hand, eta)).toThrow(/η must be a number > 0/);
    expect(() => prlStepValues({ ...hand, logprobs: [0.1, -1, -1, -1, -1] }, 2)).toThrow(/token 0's log-prob under the current policy is 0.1/);
    expect(() => prlStepValues({ ...hand, refLogprobs: [-1, -Infinity, -1, -1, -1] }, 2)).toThrow(/token 1's log-prob under the initial policy is -Infinity/);
    expect(() => prlStepValues({ ...hand, outcome: Number.NaN }, 2)).toThrow(/outcome reward must be a finite number/);
  });
  it('has schemas that refuse what the functions refuse', () => {
    expect(PrlResponse.safeParse({ ...hand, stepEnds: [0] }).success).toBe(false);
    expect(PrlResponse.safeParse({ ...hand, logprobs: [0.5] }).success).toBe(false);
    expect(LogprobLine.safeParse({ id: 'a', logprobs: [-1, -2], char_ends: [1] }).error?.issues[0]?.message).toMatch(/one entry per token/);
    expect(LogprobLine.parse({ id: 'a', logprobs: [-1, -2], char_ends: [1, 3] })).toEqual({ id: 'a', logprobs: [-1, -2], char_ends: [1, 3] });
  });
});

describe('steps on tokens', () => {
  it('maps step character ends to token ends when steps end on token boundaries', () => {
    // "12+3=15\n" as tokens "12" "+" "3" "=" "15" "\n", then "#### 15" as "####" " " "15".
    const tokenEnds = [2, 3, 4, 5, 7, 8, 12, 13, 15];
    expect(stepTokenEnds([8, 15], tokenEnds)).toEqual([6, 9]);
  });

  it('gives a step that ends mid-token the token that completes it (the straddling token belongs to the earlier step)', () => {
    // "a\n\nb": tokens "a" (0,1), "\n\n" (1,3), "b" (3,4). Split on newlines, step "a" ends at 2, inside "\n\n".
    expect(stepTokenEnds([2, 4], [1, 3, 4])).toEqual([2, 3]);
    // Two steps ending inside one token share its end.
    expect(stepTokenEnds([2, 3, 6], [1, 5, 6])).toEqual([2, 2, 3]);
  });

  it('tolerates tokens with no characters of their own (a byte-level split of one character)', () => {
    // "é!" in byte-level BPE: two tokens both ending at 1 (each holds one byte of é), then "!" ending at 2: the
    // step "é" takes both byte tokens.
    expect(stepTokenEnds([1, 2], [1, 1, 2])).toEqual([2, 3]);
    // " é" as " Ã" (0,2) and "©" (1,2) (one token holds the space and é's first byte), a step ending after the
    // space (mid-token): both pieces of é come with it.
    expect(stepTokenEnds([1, 2], [2, 2])).toEqual([2, 2]);
  });

  it('cuts a response with the one step splitter', () => {
    const text = 'x = 2 + 3\nx = 5\n#### 5';
    // Character-level tokens: token t ends at character t + 1.
    const ends = Array.from({ length: text.length }, (_, t) => t + 1);
    expect(responseStepTokenEnds(text, { by: 'newline' }, ends)).toEqual([10, 16, 22]);
  });

  it('rejects steps beyond the tokens, unordered steps and unordered token ends, naming the response', () => {
    expect(() => stepTokenEnds([3, 9], [1, 2, 3, 4], 'response q/1')).toThrow(/response q\/1: step 2 ends at character 9 but the tokens end at character 4/);
    expect(() => stepTokenEnds([3, 3], [1, 2, 3, 4])).toThrow(/step 2 ends at character 3; step ends must be increasing/);
    expect(() => stepTokenEnds([1], [2, 1, 3])).toThrow(/token 1 ends at character 1, before token 0/);
    expect(() => stepTokenEnds([1], [])).toThrow(BadInputError);
  });

  it('cuts fixed token blocks as the authors do (every B tokens, and the last token)', () => {
    expect(fixedBlockStepEnds(10, 4)).toEqual([4, 8, 10]);
    expect(fixedBlockStepEnds(8, 4)).toEqual([4, 8]);
    expect(fixedBlockStepEnds(3, 256)).toEqual([3]);
    expect(fixedBlockStepEnds(0, 4)).toEqual([]);
    expect(() => fixedBlockStepEnds(5, 0)).toThrow(/block length must be an integer ≥ 1/);
  });
});

describe('prlResponse', () => {
  const text = 'ab\ncd';
  // Character-level tokens; the initial policy a little less sure of each.
  const current = { id: 'p/1', logprobs: [-0.1, -0.2, -0.3, -0.4, -0.5], char_ends: [1, 2, 3, 4, 5] };
  const initial = { id: 'p/1', logprobs: [-0.2, -0.2, -0.5, -0.4, -0.9], char_ends: [1, 2, 3, 4, 5] };
  const base = { id: 'p/1', promptId: 'p', text, outcome: 1, current, initial };

  it('joins a response with its two log-prob lines, cut by the step splitter or by fixed token blocks', () => {
    const r = prlResponse({ ...base, steps: { by: 'newline' } });
    expect(r).toEqual({ id: 'p/1', promptId: 'p', stepEnds: [3, 5], logprobs: current.logprobs, refLogprobs: initial.logprobs, outcome: 1 });
    expect(PrlResponse.parse(r)).toEqual(r);
    // After step 1 ("ab\n"): d3 + d4 = 0 + 0.4 → 1 − 0.4/2.
    expect(prlStepValues(r, 2)[0]).toBeCloseTo(0.8, 12);
    expect(prlResponse({ ...base, steps: PrlSteps.parse({ by: 'tokens', blockTokens: 2 }) }).stepEnds).toEqual([2, 4, 5]);
  });

  it('refuses lines of another response, another tokenization or another text', () => {
    expect(() => prlResponse({ ...base, steps: { by: 'newline' }, initial: { ...initial, id: 'p/2' } })).toThrow(/log-prob lines are for p\/1 \(current policy\) and p\/2/);
    expect(() => prlResponse({ ...base, steps: { by: 'newline' }, initial: { ...initial, char_ends: [2, 2, 3, 4, 5] } })).toThrow(/tokenized it differently/);
    expect(() => prlResponse({ ...base, steps: { by: 'newline' }, text: 'ab\ncde' })).toThrow(/tokens cover 5 characters but its text has 6/);
    expect(PrlSteps.safeParse({ by: 'tokens', blockTokens: 0 }).success).toBe(false);
    expect(PrlSteps.parse({ by: 'blank-line' })).toEqual({ by: 'blank-line' });
  });
});
