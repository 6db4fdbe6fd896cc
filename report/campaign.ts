// A campaign's table and report page: accuracy per dataset against the iteration, selection precision and SFT loss.
import type { TopLevelSpec } from 'vega-lite';
import type { CampaignView } from '../core/campaign.js';
import { accuracyStandardError, formatAccuracy, formatChange } from '../core/stats.js';
import { reportHtml } from './html.js';
import { markdownTable } from './markdown.js';
import { renderSvg } from './render-svg.js';
import { MISSING, percent, type Grid } from './tables.js';

function datasetsOf(view: CampaignView): string[] {
  return view.rows[0]?.accuracy.map((a) => a.dataset) ?? [];
}

/** One row per iteration after the initial policy's: accuracy ± SE, the change ± its paired SE, and what fed SFT. */
export function campaignGrid(view: CampaignView): Grid {
  const datasets = datasetsOf(view);
  const first = view.rows[0];
  const initial = [
    '0',
    view.initialPolicy.checkpoint,
    MISSING,
    MISSING,
    MISSING,
    MISSING,
    ...datasets.flatMap((d) => {
      const a = first?.accuracy.find((x) => x.dataset === d);
      return [a ? formatAccuracy(a.before, accuracyStandardError(a.before, a.total)) : MISSING, MISSING];
    }),
  ];
  const rows = view.rows.map((r) => [
    String(r.iteration),
    r.policyAfter,
    String(r.prompts),
    r.learningRate.toExponential(2),
    percent(r.selectionPrecision),
    r.sftLossFirst !== null && r.sftLossLast !== null ? `${r.sftLossFirst.toFixed(3)} → ${r.sftLossLast.toFixed(3)}` : MISSING,
    ...datasets.flatMap((d) => {
      const a = r.accuracy.find((x) => x.dataset === d);
      if (!a) return [MISSING, MISSING];
      return [formatAccuracy(a.after, accuracyStandardError(a.after, a.total)), a.changeStdErr === null ? MISSING : formatChange(a.after - a.before, a.changeStdErr, 'paired')];
    }),
  ]);
  return {
    columns: [
      { label: 'iteration', align: 'right' },
      { label: 'policy', align: 'left' },
      { label: 'prompts', align: 'right' },
      { label: 'learning rate', align: 'right' },
      { label: 'selection precision %', align: 'right' },
      { label: 'SFT loss', align: 'right' },
      ...datasets.flatMap((d) => [
        { label: `${d} %`, align: 'right' as const },
        { label: `${d} change`, align: 'right' as const },
      ]),
    ],
    rows: [initial, ...rows],
  };
}

/** A job's failure as one line: what failed and the traceback's last line (its whole text is in campaign.json). */
function briefError(message: string): string {
  const lines = message.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length <= 1 ? (lines[0] ?? '') : `${lines[0]} … ${lines.at(-1)}`;
}

/** Where the campaign is: stopped and why, failed and waiting, running, or waiting for a trigger. */
export function campaignStateLine(view: CampaignView): string {
  const best = view.best ? `; best so far: ${view.best.iteration === 0 ? 'the initial policy' : `iteration ${view.best.iteration}`} (${percent(view.best.accuracy)}%)` : '';
  const skipped = view.skippedTriggers ? `; ${view.skippedTriggers} scheduled trigger(s) skipped while busy` : '';
  const done = `${view.iterations} of at most ${view.maxIterations} iterations done`;
  if (view.status === 'stopped') return `stopped: ${view.stopReason} (${done}${best})`;
  if (view.status === 'failed') return `iteration ${view.lastError?.iteration} failed: ${briefError(view.lastError?.message ?? '')}\n  fix the cause, then \`prm-raft campaign next\` runs it again from its finished stages (${done}${best}${skipped})`;
  if (view.status === 'running') return `iteration ${view.iterations + 1} running (${done}${best}${skipped})`;
  const waiting = view.paused ? 'paused' : view.auto ? 'starting the next iteration' : 'waiting for `prm-raft campaign next`';
  return `${waiting} (${done}${best}${skipped})`;
}

export function campaignMarkdown(view: CampaignView): string {
  return `## Campaign ${view.name}\n\n${campaignStateLine(view)}\n\n${markdownTable(campaignGrid(view))}`;
}

interface Point {
  iteration: number;
  series: string;
  value: number;
  lo: number;
  hi: number;
}

/** Accuracy per dataset against the iteration (0: the initial policy), with ±1 SE whiskers. */
export function accuracyByIterationSpec(view: CampaignView): TopLevelSpec {
  const values: Point[] = datasetsOf(view).flatMap((dataset) => {
    const points = view.rows.flatMap((r) => {
      const a = r.accuracy.find((x) => x.dataset === dataset);
      return a ? [{ iteration: r.iteration, p: a.after, n: a.total }] : [];
    });
    const a0 = view.rows[0]?.accuracy.find((x) => x.dataset === dataset);
    if (a0) points.unshift({ iteration: 0, p: a0.before, n: a0.total });
    return points.map(({ iteration, p, n }) => {
      const se = accuracyStandardError(p, n);
      return { iteration, series: dataset, value: p, lo: p - se, hi: p + se };
    });
  });
  return lineSpec('Accuracy against the iteration', values, 'accuracy', '%', false);
}

/** Selection precision and the SFT loss (first and last logged step) per iteration. */
export function trainingByIterationSpec(view: CampaignView): TopLevelSpec {
  const values: Point[] = view.rows.flatMap((r) => [
    ...(r.selectionPrecision === null ? [] : [{ iteration: r.iteration, series: 'selection precision', value: r.selectionPrecision, lo: r.selectionPrecision, hi: r.selectionPrecision }]),
    ...(r.sftLossLast === null ? [] : [{ iteration: r.iteration, series: 'SFT loss (last step)', value: r.sftLossLast, lo: r.sftLossLast, hi: r.sftLossLast }]),
  ]);
  return lineSpec('Selection precision and SFT loss', values, 'value', '', true);
}

/** `zero: false` zooms the y axis onto the points: a change of a few points is what an accuracy plot must show. */
function lineSpec(title: string, values: Point[], yTitle: string, format: string, zero: boolean): TopLevelSpec {
  return {
    title,
    width: 480,
    height: 240,
    data: { values },
    encoding: {
      x: { field: 'iteration', type: 'quantitative', axis: { title: 'iteration', tickMinStep: 1, format: 'd' } },
      color: { field: 'series', type: 'nominal', legend: { title: null, labelLimit: 360 } },
    },
    layer: [
      { mark: { type: 'line', point: true }, encoding: { y: { field: 'value', type: 'quantitative', scale: { zero }, axis: { title: yTitle, ...(format ? { format } : {}) } } } },
      { mark: { type: 'rule' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

export async function campaignPage(view: CampaignView): Promise<string> {
  const plots = view.rows.length > 0;
  return reportHtml({
    title: `RAFT campaign: ${view.name}`,
    sections: [
      {
        heading: 'Accuracy against the iteration',
        ...(plots ? { svg: await renderSvg(accuracyByIterationSpec(view)) } : {}),
        table: campaignGrid(view),
        notes: [
          campaignStateLine(view),
          'Iteration 0 is the initial policy. Accuracy ± its standard error √(p(1−p)/n); change ± the paired standard error of the same questions before and after.',
          'Selection precision: the share of kept responses whose answer is right (what the selection fed SFT).',
        ],
      },
      ...(plots ? [{ heading: 'Selection precision and SFT loss', svg: await renderSvg(trainingByIterationSpec(view)) }] : []),
    ],
  });
}
