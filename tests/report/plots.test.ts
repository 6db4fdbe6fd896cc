// The plots rendered in Node, read as SVG text: the right series and labels, without a browser.
import { describe, expect, it } from 'vitest';
import type { BonReport } from '../../core/best-of-n.js';
import { reportHtml } from '../../report/html.js';
import { comparisonPage } from '../../report/pages.js';
import { accuracyVsNSpec, beforeAfterSpec, selectedScoresSpec, tunedColours } from '../../report/plots.js';
import { renderSvg } from '../../report/render-svg.js';
import { bestOfN, comparison, selectedScores } from './fixtures.js';

/** The text of every <text> element: axis titles, tick labels, legend entries. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] as string);
}

describe('plots', () => {
  it('draws best-of-N per reward model against a log2 N axis, with majority vote and pass@N once when shared', async () => {
    const svg = await renderSvg(accuracyVsNSpec(bestOfN));
    expect(svg.startsWith('<svg')).toBe(true);
    const t = texts(svg);
    expect(t).toEqual(expect.arrayContaining(['ER-PRM', 'ORM', 'majority vote', 'pass@N', 'N (responses per problem)', 'accuracy', '1', '2', '4', '8']));
  });

  it('draws majority vote per reward model when the tables disagree on it', async () => {
    const [er, orm] = bestOfN.rewardModels as [BonReport['rewardModels'][number], BonReport['rewardModels'][number]];
    const table = orm.tables[0]!;
    const changed = { ...orm, tables: [{ ...table, results: table.results.map((r) => ({ ...r, majority: r.majority + 0.01 })) }] };
    const t = texts(await renderSvg(accuracyVsNSpec({ ...bestOfN, rewardModels: [er, changed] })));
    expect(t).toEqual(expect.arrayContaining(['majority vote, ER-PRM', 'majority vote, ORM', 'pass@N']));
  });

  it('leaves a failed row out of the bars and escapes names in the SVG', async () => {
    const svg = await renderSvg(beforeAfterSpec(comparison));
    const t = texts(svg);
    expect(t).toEqual(expect.arrayContaining(['baseline', 'ER-PRM', 'hard &lt;b&gt;&amp;&lt;/b&gt; soft', 'gsm8k', 'math']));
    expect(t).not.toContain('ORM');
  });

  it('draws a ±1 standard error whisker on every bar', async () => {
    const svg = await renderSvg(beforeAfterSpec(comparison));
    // Four plotted rows (the failed one has no bars) × two datasets.
    expect(svg.match(/aria-roledescription="rule mark"/g)).toHaveLength(8);
    expect(svg).toContain('aria-label="dataset: gsm8k; lo: 0.7676; hi: 0.7904; policy: baseline"');
  });

  it('gives a model the same colour in the bars and the score histograms', async () => {
    const colours = tunedColours(comparison);
    const svg = await renderSvg(selectedScoresSpec({ 'ER-PRM': selectedScores['ER-PRM']! }, colours));
    expect(svg).toContain(`fill="${colours.get('ER-PRM')}"`);
    expect(await renderSvg(beforeAfterSpec(comparison))).toContain(`fill="${colours.get('ER-PRM')}"`);
  });
});

describe('reportHtml', () => {
  it('escapes text, inlines the SVG, and references nothing outside the page', () => {
    const html = reportHtml({
      title: 'a <script>alert(1)</script> title',
      sections: [{ heading: 'x & y', svg: '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>', table: { columns: [{ label: '<th>', align: 'left' }], rows: [['"q"']] }, notes: ["it's"] }],
    });
    expect(html).not.toContain('<script');
    expect(html).toContain('a &lt;script&gt;alert(1)&lt;/script&gt; title');
    expect(html).toContain('<h2>x &amp; y</h2>');
    expect(html).toContain('<figure><svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg></figure>');
    expect(html).toContain('<th>&lt;th&gt;</th>');
    expect(html).toContain('<td>&quot;q&quot;</td>');
    expect(html).toContain('<li>it&#39;s</li>');
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(/https?:|src=|href=/);
  });
});

describe('comparisonPage', () => {
  it('leaves out the score histograms when no reward model has selected scores', async () => {
    const html = await comparisonPage(comparison, { 'ER-PRM': [] });
    expect(html.match(/<figure>/g)).toHaveLength(1);
    expect(html).not.toContain('Scores of the selected responses');
  });
});
