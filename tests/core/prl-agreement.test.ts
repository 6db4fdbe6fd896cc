// The PRL-vs-ER agreement table on hand-made labels: Pearson r, mean |PRL − ER| and n per step position and overall,
// the last step left out by default, the tail pooled, and its Markdown.
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../core/errors.js';
import { agreementCell, agreementTable, AgreementSolution, AgreementTable, type AgreementRow } from '../../core/prl-agreement.js';
import { agreementMarkdown } from '../../report/prl-agreement.js';

const solutions: AgreementSolution[] = [
  { id: 's1', prl: [0.2, 0.6, 1], er: [0.3, 0.5, 1] },
  { id: 's2', prl: [0.4, 0.8, 0], er: [0.5, 0.9, 0] },
  // One step: that step is the last, so by default it is not in the table.
  { id: 's3', prl: [0.9], er: [0.1] },
];

const row = (t: AgreementTable, position: string): AgreementRow => t.rows.find((r) => r.position === position) as AgreementRow;

describe('agreementCell', () => {
  it('computes n, Pearson r and the mean absolute difference by hand', () => {
    // x = [.2, .4, .6, .8], y = [.3, .5, .5, .9]: means .5 and .55; Σ dx·dy = .18, Σ dx² = .2, Σ dy² = .19;
    // r = .18/√(.2·.19) = 0.923380…; |x − y| = .1 each.
    const c = agreementCell([
      [0.2, 0.3],
      [0.4, 0.5],
      [0.6, 0.5],
      [0.8, 0.9],
    ]);
    expect(c.n).toBe(4);
    expect(c.pearson).toBeCloseTo(0.18 / Math.sqrt(0.2 * 0.19), 12);
    expect(c.meanAbsDiff).toBeCloseTo(0.1, 12);
    expect(c.meanPrl).toBeCloseTo(0.5, 12);
    expect(c.meanEr).toBeCloseTo(0.55, 12);
  });
  it('gives −1 for opposite labels and null where r is undefined (one pair, a constant side, no pairs)', () => {
    expect(agreementCell([
      [0, 1],
      [1, 0],
    ]).pearson).toBeCloseTo(-1, 12);
    expect(agreementCell([[0.3, 0.4]])).toMatchObject({ n: 1, pearson: null, meanAbsDiff: expect.closeTo(0.1, 12) as number });
    expect(agreementCell([
      [0.5, 0.1],
      [0.5, 0.9],
    ]).pearson).toBeNull();
    expect(agreementCell([])).toEqual({ n: 0, pearson: null, meanAbsDiff: null, meanPrl: null, meanEr: null });
  });
});

describe('agreementTable', () => {
  it('tabulates per step position and overall, leaving each last step out by default', () => {
    const t = agreementTable(solutions);
    expect(t.rows.map((r) => r.position)).toEqual(['1', '2', 'all']);
    expect(row(t, '1')).toMatchObject({ n: 2, pearson: expect.closeTo(1, 12) as number, meanAbsDiff: expect.closeTo(0.1, 12) as number });
    expect(row(t, '2')).toMatchObject({ n: 2, pearson: expect.closeTo(1, 12) as number, meanAbsDiff: expect.closeTo(0.1, 12) as number });
    expect(t.overall).toMatchObject({ n: 4, pearson: expect.closeTo(0.9233805168, 9) as number, meanAbsDiff: expect.closeTo(0.1, 12) as number });
    expect(row(t, 'all')).toMatchObject(t.overall);
    expect(t.solutions).toBe(3);
    expect(AgreementTable.parse(t)).toEqual(t);
  });

  it('includes last steps when asked and pools positions from maxPosition on', () => {
    const t = agreementTable(solutions, { lastStep: 'include', maxPosition: 2 });
    expect(t.rows.map((r) => [r.position, r.n])).toEqual([
      ['1', 3],
      ['≥2', 4],
      ['all', 7],
    ]);
    // Position 1 now has s3's (0.9, 0.1): MAD = (.1 + .1 + .8)/3.
    expect(row(t, '1').meanAbsDiff).toBeCloseTo(1 / 3, 12);
    // ≥2: (.6,.5), (1,1), (.8,.9), (0,0).
    expect(row(t, '≥2').meanAbsDiff).toBeCloseTo(0.05, 12);
  });

  it('rejects solutions whose label lists differ in length, non-finite labels and a bad maxPosition', () => {
    expect(() => agreementTable([{ id: 'x', prl: [0.1, 0.2], er: [0.1] }])).toThrow(BadInputError);
    expect(() => agreementTable([{ id: 'x', prl: [0.1, 0.2], er: [0.1] }])).toThrow(/solution x has 2 PRL labels but 1 ER labels/);
    expect(() => agreementTable([{ id: 'y', prl: [Number.NaN, 0], er: [0, 0] }])).toThrow(/solution y step 1: labels must be finite/);
    expect(() => agreementTable(solutions, { maxPosition: 0 })).toThrow(/maxPosition must be an integer ≥ 1/);
    expect(AgreementSolution.safeParse({ id: 'x', prl: [1], er: [] }).success).toBe(false);
  });

  it('renders as Markdown with the overall row and a dash where r is undefined', () => {
    const md = agreementMarkdown(agreementTable([...solutions, { id: 's4', prl: [0.5, 0.5, 0.5, 1], er: [0.2, 0.2, 0.2, 1] }]), 2);
    expect(md).toContain('## PRL vs ER labels');
    expect(md).toContain("η = 2; 7 steps of 4 solutions, each solution's last step left out");
    expect(md).toContain('| Step | n | Pearson r | Mean \\|PRL − ER\\| | Mean PRL | Mean ER |');
    expect(md).toContain('|---|---:|---:|---:|---:|---:|');
    // Position 3 holds s4's one pair: no correlation.
    expect(md).toContain('| 3 | 1 | — | 0.300 | 0.500 | 0.200 |');
    expect(md).toMatch(/\| all \| 7 \| /);
  });
});
