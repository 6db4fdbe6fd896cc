// Pairing two evaluations of one dataset question by question.
import { describe, expect, it } from 'vitest';
import { ResultPairing } from '../../core/evaluation.js';
import { BadInputError } from '../../core/errors.js';

const files = { before: 'before.jsonl', after: 'after.jsonl' };
const q = (id: string, correct: boolean) => ({ id, correct });

describe('ResultPairing', () => {
  it('counts a question gained when only the second got it right, lost when only the first did', () => {
    const p = new ResultPairing(files);
    for (const [id, c] of [['a', false], ['b', true], ['c', true], ['d', false]] as const) p.addBefore(q(id, c));
    for (const [id, c] of [['d', false], ['c', true], ['b', false], ['a', true]] as const) p.addAfter(q(id, c));
    expect(p.counts('test')).toEqual({ dataset: 'test', total: 4, gained: 1, lost: 1 });
  });

  it('pairs a repeated id in order of appearance', () => {
    const p = new ResultPairing(files);
    p.addBefore(q('x', false));
    p.addBefore(q('x', true));
    p.addAfter(q('x', true)); // gained against the first
    p.addAfter(q('x', true)); // right both times
    expect(p.counts('test')).toEqual({ dataset: 'test', total: 2, gained: 1, lost: 0 });
  });

  it('says when an id is repeated more often in one file than in the other', () => {
    const more = new ResultPairing(files);
    more.addBefore(q('x', true));
    more.addAfter(q('x', true));
    expect(() => more.addAfter(q('x', true))).toThrow(new BadInputError('cannot pair the two evaluations question by question: question "x" is in after.jsonl more often than in before.jsonl'));
    const fewer = new ResultPairing(files);
    fewer.addBefore(q('x', true));
    fewer.addBefore(q('x', true));
    fewer.addAfter(q('x', true));
    expect(() => fewer.counts('test')).toThrow('question "x" is in before.jsonl more often than in after.jsonl');
  });

  it('has nothing to count for two empty evaluations', () => {
    expect(new ResultPairing(files).counts('test')).toEqual({ dataset: 'test', total: 0, gained: 0, lost: 0 });
  });
});
