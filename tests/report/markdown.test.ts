import { describe, expect, it } from 'vitest';
import type { BonReport } from '../../core/best-of-n.js';
import { ComparisonTable } from '../../core/comparison.js';
import { bestOfNMarkdown, comparisonCsv, comparisonMarkdown } from '../../report/markdown.js';
import { comparisonUnits, percent, signedPoints } from '../../report/tables.js';
import { bestOfN, comparison } from './fixtures.js';

describe('number formatting', () => {
  it('prints percent with one decimal and signed changes, never "-0.0"', () => {
    expect(percent(0.779)).toBe('77.9');
    expect(percent(1)).toBe('100.0');
    expect(percent(null)).toBe('—');
    expect(signedPoints(0.016)).toBe('+1.6');
    expect(signedPoints(-0.003)).toBe('-0.3');
    expect(signedPoints(-0.0001)).toBe('0.0');
    expect(signedPoints(0.0004)).toBe('0.0');
    expect(signedPoints(null)).toBe('—');
  });
});

describe('comparison table', () => {
  it('renders Table 1 as Markdown: percent with standard errors, signed change, diagnostics, and the error of a failed row', () => {
    expect(comparisonMarkdown(comparison)).toBe(
      `## tinymath

${comparisonUnits(comparison)}

| Policy | gsm8k (%) | ± SE | Δ gsm8k | ± SE | Gained/lost | math (%) | ± SE | Δ math | ± SE | Gained/lost | Selection precision (%) | Mean selected score | Error |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
| baseline | 77.9 | 1.1 | — | — | — | 31.2 | 2.1 | — | — | — | — | — |  |
| ER-PRM | 79.5 | 1.1 | +1.6 | 0.8 | 60/39 | 31.8 | 2.1 | +0.6 | 1.4 | 25/22 | 82.4 | 0.912 |  |
| hard &lt;b>&&lt;/b> soft | 78.1 | 1.1 | +0.2 | 0.7 | 40/37 | 30.9 | 2.1 | -0.3 | 1.3 | 20/22 | 80.0 | 0.871 |  |
| ORM | — | — | — | — | — | — | — | — | — | — | — | — | SFT failed: out of memory \\| step 12 |
| random | 77.2 | 1.2 | -0.7 | 0.8 | 45/54 | 30.0 | 2.1 | -1.2 | 1.6 | 30/36 | 70.0 | — |  |
`,
    );
    expect(comparisonUnits(comparison)).toContain('a Δ within 2 SE is noise');
    expect(comparisonUnits(comparison)).toContain('for Δ the paired √((g + l)/n − Δ²)/√n over the g questions gained and l lost');
  });

  it('has no error column when every row finished', () => {
    const table: ComparisonTable = { ...comparison, rows: comparison.rows.slice(0, 2) };
    expect(comparisonMarkdown(table).split('\n').slice(4, 6)).toEqual([
      '| Policy | gsm8k (%) | ± SE | Δ gsm8k | ± SE | Gained/lost | math (%) | ± SE | Δ math | ± SE | Gained/lost | Selection precision (%) | Mean selected score |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ]);
  });

  it('reads a table written before the evaluations were paired: its Δ SE said to be the independent form, no counts', () => {
    const { deltaStdErrForm: _f, ...stored } = comparison;
    const old = ComparisonTable.parse({ ...stored, rows: comparison.rows.slice(0, 2).map(({ gained: _g, lost: _l, ...row }) => ({ ...row, deltaStdErr: { gsm8k: 0.0159, math: 0.0294 } })) });
    expect(old.deltaStdErrForm).toBe('independent');
    const md = comparisonMarkdown(old);
    expect(md).toContain('and √(SE₁² + SE₂²) for Δ (conservative: both evaluations use one test set)');
    expect(md).not.toContain('paired');
    expect(md.split('\n')[7]).toBe('| ER-PRM | 79.5 | 1.1 | +1.6 | 1.6 | 31.8 | 2.1 | +0.6 | 2.9 | 82.4 | 0.912 |');
  });

  it('shows no standard error for a summary written before they were recorded', () => {
    const { deltaStdErrForm: _f, ...stored } = comparison;
    const old = ComparisonTable.parse({ ...stored, rows: comparison.rows.slice(0, 2).map(({ accuracyStdErr: _a, deltaStdErr: _d, gained: _g, lost: _l, ...row }) => row) });
    expect(comparisonMarkdown(old).split('\n')[7]).toBe('| ER-PRM | 79.5 | — | +1.6 | — | 31.8 | — | +0.6 | — | 82.4 | 0.912 |');
  });

  it('writes CSV with fractions at full precision and empty fields for missing numbers', () => {
    expect(comparisonCsv(comparison)).toBe(
      `policy,kind,gsm8k_accuracy,gsm8k_accuracy_se,gsm8k_delta,gsm8k_delta_se,gsm8k_gained,gsm8k_lost,math_accuracy,math_accuracy_se,math_delta,math_delta_se,math_gained,math_lost,selection_precision,mean_selected_score,error
baseline,baseline,0.779,0.0114,,,,,0.312,0.0207,,,,,,,
ER-PRM,prm,0.795,0.0111,0.016,0.0075,60,39,0.318,0.0208,0.006,0.0137,25,22,0.824,0.9123,
hard <b>&</b> soft,prm,0.781,0.0114,0.002,0.0067,40,37,0.309,0.0207,-0.003,0.013,20,22,0.8,0.8712,
ORM,orm,,,,,,,,,,,,,,,SFT failed: out of memory | step 12
random,random,0.772,0.0116,-0.007,0.0075,45,54,0.3,0.0205,-0.012,0.0162,30,36,0.7,,
`,
    );
  });

  it('quotes CSV fields that hold a comma, a quote or a line break', () => {
    const row = comparison.rows[3]!;
    const table: ComparisonTable = { name: 't', datasets: ['gsm8k'], rows: [{ ...row, name: 'ORM, "v2"', error: 'line one\nline two' }], deltaStdErrForm: 'paired' };
    expect(comparisonCsv(table)).toBe(`policy,kind,gsm8k_accuracy,gsm8k_accuracy_se,gsm8k_delta,gsm8k_delta_se,gsm8k_gained,gsm8k_lost,selection_precision,mean_selected_score,error
"ORM, ""v2""",orm,,,,,,,,,"line one
line two"
`);
  });
});

describe('best-of-N tables', () => {
  it('lists the reward models that failed, with why, after the tables', () => {
    const md = bestOfNMarkdown({ ...bestOfN, failed: [{ name: 'er-9', kind: 'prm', error: 'PRM server answered 400: too long' }] });
    expect(md.endsWith('### Failed reward models\n\n- er-9 (PRM) has no table: PRM server answered 400: too long\n')).toBe(true);
    expect(bestOfNMarkdown(bestOfN)).not.toContain('Failed reward models');
  });

  it('renders each reward model with best-of-N ± spread, the votes, pass@N and the reward-hacking line', () => {
    const report: BonReport = {
      name: 'tiny',
      problems: 10,
      samplesPerProblem: 4,
      rewardModels: [
        {
          name: 'ORM',
          kind: 'orm',
          tables: [
            {
              aggregate: 'last',
              draws: 3,
              seed: 7,
              problems: 10,
              results: [
                { n: 1, best_of_n: 0.5, majority: 0.5, weighted: 0.5, pass_at_n: 0.5, spread: 0.05, problems_short: 0 },
                { n: 4, best_of_n: 0.4, majority: 0.6, weighted: 0.55, pass_at_n: 0.8, spread: 0, problems_short: 0 },
              ],
              reward_hacking: { peak_n: 1, peak: 0.5, last_n: 4, last: 0.4 },
              notes: ['A note | with a pipe.'],
            },
          ],
        },
      ],
    };
    expect(bestOfNMarkdown(report)).toBe(
      `## tiny

10 problems, 4 responses sampled per problem. Accuracy in percent; best-of-N is the mean over random N-subsets ± their standard deviation.

### ORM (ORM, one score per response, 3 draws, seed 7)

| N | Best-of-N (%) | Majority (%) | Weighted (%) | Pass@N (%) |
|---:|---:|---:|---:|---:|
| 1 | 50.0 ± 5.0 | 50.0 | 50.0 | 50.0 |
| 4 | 40.0 ± 0.0 | 60.0 | 55.0 | 80.0 |

- Reward hacking: yes. Best-of-N peaks at 50.0% (N = 1) and falls to 40.0% at N = 4.
- A note \\| with a pipe.
`,
    );
  });
});
