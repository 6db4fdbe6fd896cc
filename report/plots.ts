// Vega-Lite specs for the report plots: plain data in, spec out, with all data inline so nothing is fetched.
import type { TopLevelSpec } from 'vega-lite';
import type { BonReport } from '../core/best-of-n.js';
import type { ComparisonTable } from '../core/comparison.js';

/** Tableau 10: distinct hues that survive print and most colour blindness. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const BASELINE_COLOUR = '#8c8c8c';
const MAJORITY = 'majority vote';
const PASS_AT_N = 'pass@N';
const BEST_OF_N = 'best-of-N';
/** Vega cuts longer labels with an ellipsis, and without a canvas it overestimates text width. */
const LABEL_LIMIT = 360;

function colours(count: number): string[] {
  return Array.from({ length: count }, (_, i) => PALETTE[i % PALETTE.length] as string);
}

interface CurvePoint {
  n: number;
  accuracy: number;
  /** best-of-N ± its spread; equal to accuracy for the reference curves. */
  lo: number;
  hi: number;
  series: string;
  measure: string;
}

/**
 * Best-of-N accuracy against N per reward model (log2 x axis), like the paper's figures, with a ± spread band.
 * Majority vote and pass@N come from the samples, not the reward model, so they are drawn once as dashed and
 * dotted references when every table agrees on them, and per table otherwise.
 */
export function accuracyVsNSpec(report: BonReport): TopLevelSpec {
  const aggregations = new Set(report.rewardModels.flatMap((m) => m.tables.map((t) => t.aggregate)));
  const curves = report.rewardModels.flatMap((m) =>
    m.tables.map((t) => ({ label: aggregations.size > 1 ? `${m.name} (${t.aggregate})` : m.name, rows: t.results })),
  );
  const shared = (f: 'majority' | 'pass_at_n') => new Set(curves.map((c) => JSON.stringify(c.rows.map((r) => [r.n, r[f]])))).size <= 1;
  const curveColours = colours(curves.length);
  const points: CurvePoint[] = [];
  const domain = curves.map((c) => c.label);
  const range = [...curveColours];
  for (const [measure, field, grey] of [[MAJORITY, 'majority', '#444444'], [PASS_AT_N, 'pass_at_n', '#9a9a9a']] as const) {
    const once = shared(field);
    // Drawn once in grey when shared; otherwise in each reward model's colour, told apart by the dash.
    (once ? curves.slice(0, 1) : curves).forEach((c, i) => {
      const series = once ? measure : `${measure}, ${c.label}`;
      domain.push(series);
      range.push(once ? grey : (curveColours[i] as string));
      for (const r of c.rows) points.push({ n: r.n, accuracy: r[field], lo: r[field], hi: r[field], series, measure });
    });
  }
  for (const c of curves) {
    for (const r of c.rows) {
      points.push({ n: r.n, accuracy: r.best_of_n, lo: r.best_of_n - r.spread, hi: r.best_of_n + r.spread, series: c.label, measure: BEST_OF_N });
    }
  }
  const ns = [...new Set(points.map((p) => p.n))].sort((a, b) => a - b);
  const x = { field: 'n', type: 'quantitative', scale: { type: 'log', base: 2 }, axis: { values: ns, format: 'd', title: 'N (responses per problem)' } } as const;
  const y = { type: 'quantitative', scale: { zero: false }, axis: { format: '%', title: 'accuracy' } } as const;
  const color = { field: 'series', type: 'nominal', scale: { domain, range }, legend: { title: null, labelLimit: LABEL_LIMIT, symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 2.5 } } as const;
  return {
    title: `Best-of-N accuracy: ${report.name}`,
    width: 460,
    height: 300,
    data: { values: points },
    layer: [
      {
        transform: [{ filter: { field: 'measure', equal: BEST_OF_N } }],
        mark: { type: 'area', opacity: 0.15 },
        encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { ...y, field: 'accuracy' },
          color,
          strokeDash: { field: 'measure', type: 'nominal', scale: { domain: [BEST_OF_N, MAJORITY, PASS_AT_N], range: [[1, 0], [6, 4], [2, 3]] }, legend: null },
        },
      },
    ],
  };
}

/**
 * Grouped bars: accuracy per evaluation dataset for the baseline and each tuned policy, with ±1 standard error
 * whiskers; failed rows are left out.
 */
export function beforeAfterSpec(table: ComparisonTable): TopLevelSpec {
  const shown = plottedRows(table);
  const tuned = tunedColours(table);
  const names = shown.map((r) => r.name);
  const values = shown.flatMap((r) =>
    table.datasets.flatMap((dataset) => {
      const accuracy = r.accuracy[dataset];
      // A summary from before standard errors were recorded draws no whisker.
      const se = r.accuracyStdErr[dataset] ?? 0;
      return accuracy == null ? [] : [{ dataset, policy: r.name, accuracy, lo: accuracy - se, hi: accuracy + se }];
    }),
  );
  return {
    title: `Accuracy after one RAFT iteration: ${table.name}`,
    width: { step: 26 },
    height: 280,
    data: { values },
    encoding: {
      x: { field: 'dataset', type: 'nominal', sort: table.datasets, axis: { title: null, labelAngle: 0 } },
      xOffset: { field: 'policy', type: 'nominal', sort: names },
    },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y: { field: 'accuracy', type: 'quantitative', axis: { format: '%', title: 'accuracy' } },
          color: { field: 'policy', type: 'nominal', scale: { domain: names, range: names.map((n) => tuned.get(n) ?? BASELINE_COLOUR) }, legend: { title: null, labelLimit: LABEL_LIMIT } },
        },
      },
      { mark: { type: 'rule', color: '#333333' }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
    ],
  };
}

/** The rows with an accuracy to draw: a run that failed before evaluation has none. */
export function plottedRows(table: ComparisonTable): ComparisonTable['rows'] {
  return table.rows.filter((r) => table.datasets.some((d) => r.accuracy[d] != null));
}

/** A colour per tuned policy by its place in the table, so the bars and the score histograms agree. */
export function tunedColours(table: ComparisonTable): Map<string, string> {
  const tuned = table.rows.filter((r) => r.kind !== 'baseline').map((r) => r.name);
  const list = colours(tuned.length);
  return new Map(tuned.map((name, i) => [name, list[i] as string]));
}

/**
 * One histogram per reward model of the scores of the responses it selected, on a shared x axis. `colourOf`
 * (from tunedColours) keeps each model's colour from the bars; a model it lacks gets one by position.
 */
export function selectedScoresSpec(scores: Record<string, number[]>, colourOf: ReadonlyMap<string, string>): TopLevelSpec {
  const names = Object.keys(scores);
  const fallback = colours(names.length);
  const values = Object.entries(scores).flatMap(([model, list]) => list.map((score) => ({ model, score })));
  return {
    title: 'Scores of the selected responses',
    data: { values },
    facet: { row: { field: 'model', type: 'nominal', sort: names, header: { title: null, labelAngle: 0, labelAlign: 'right', labelLimit: LABEL_LIMIT } } },
    spec: {
      width: 420,
      height: 70,
      mark: 'bar',
      encoding: {
        x: { field: 'score', type: 'quantitative', bin: { maxbins: 30 }, title: 'selected score' },
        y: { aggregate: 'count', type: 'quantitative', title: 'responses', axis: { tickMinStep: 1, format: 'd' } },
        color: { field: 'model', type: 'nominal', scale: { domain: names, range: names.map((n, i) => colourOf.get(n) ?? (fallback[i] as string)) }, legend: null },
      },
    },
  };
}
