// prm eval's Markdown and HTML: the same grids, the chosen threshold said and marked, published figures for ProcessBench.
import { describe, expect, it } from 'vitest';
import { sweepThresholds, type ScoredSubset } from '../../core/processbench.js';
import { prmEvalMarkdown, prmEvalPage } from '../../report/processbench.js';

// gsm8k is perfect at 0.25 and 0.30 (0.2 and 0.1 below, 0.3 not); math only from 0.45 on. Tuned on gsm8k, 0.25 is
// used although the mean F1 over both subsets would peak higher at 0.45.
const gsm8k: ScoredSubset = {
  subset: 'gsm8k',
  records: [
    { label: 1, scores: [0.9, 0.2] },
    { label: 0, scores: [0.1, 0.9] },
    { label: -1, scores: [0.9, 0.3] },
    { label: -1, scores: [0.9, 0.9] },
  ],
};
const math: ScoredSubset = { subset: 'math', records: [{ label: 0, scores: [0.4] }, { label: -1, scores: [0.9] }] };

describe('prmEvalMarkdown', () => {
  const md = prmEvalMarkdown('processbench', sweepThresholds([gsm8k, math]));
  it('says which threshold is used and why, and prints each subset with the mean F1', () => {
    expect(md).toContain('first step scored below 0.25 (best F1 on gsm8k in the sweep). Accuracy and F1 in %.');
    expect(md).toContain('| gsm8k | 4 | 100.0 | 100.0 | 100.0 |');
    expect(md).toContain('| math | 2 | 0.0 | 100.0 | 0.0 |');
    expect(md).toContain('| average F1 |  |  |  | 50.0 |');
  });
  it('lists the published figures with their sources', () => {
    expect(md).toContain('- Math-Shepherd-PRM-7B: 31.5 (ProcessBench paper (arXiv 2412.06559), Table 3)');
    expect(md).toContain('- Qwen2.5-Math-PRM-7B: 73.5 (The Lessons of Developing PRMs in Mathematical Reasoning (arXiv 2501.07301))');
  });
  it('marks the chosen row of the sweep, once', () => {
    expect(md).toContain('| 0.25 ← | 100.0 | 0.0 | 50.0 |');
    expect(md).toContain('| 0.45 | 66.7 | 100.0 | 83.3 |');
    expect(md.match(/\d ← \|/g)).toHaveLength(1);
  });
  it('says when the threshold was given, or tuned on the only subset, and has no published figures for tinymath', () => {
    const tiny = { ...gsm8k, subset: 'tinymath' };
    expect(prmEvalMarkdown('tinymath', sweepThresholds([tiny], 0.5))).toContain('below 0.5 (given by --threshold)');
    const tuned = prmEvalMarkdown('tinymath', sweepThresholds([tiny]));
    expect(tuned).toContain('(best F1 on tinymath in the sweep, tuned on the records it scores: an upper bound)');
    expect(tuned).not.toContain('Published');
  });
});

describe('prmEvalPage', () => {
  it('is one self-contained page with the same numbers', () => {
    const html = prmEvalPage('processbench', sweepThresholds([gsm8k, math]));
    expect(html).toContain('<title>PRM evaluation on processbench</title>');
    expect(html).toContain('<td class="num">83.3</td>');
    expect(html).toContain('0.25 ←');
    expect(html).toContain('Math-Shepherd-PRM-7B: 31.5');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});
