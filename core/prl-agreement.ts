// How PRL labels agree with ER(η) Monte-Carlo labels on the same steps (issue 14): for a completion drawn from the
// optimal policy the two estimate the same soft value, ER-PRM by sampling completions from each prefix, PRL from
// one response's log-ratios. Pure: the pairs in, the table out (its Markdown is report/prl-agreement.ts).
import { z } from 'zod';
import { BadInputError } from './errors.js';

/** One solution's labels on the same steps: PRL's r_PRL(x, a^[l]) and the ER(η) label from its Monte-Carlo counts. */
export const AgreementSolution = z
  .strictObject({
    id: z.string().min(1),
    prl: z.array(z.number()),
    er: z.array(z.number()),
  })
  .refine((s) => s.prl.length === s.er.length, { error: 'prl and er must label the same steps (one value each per step)', path: ['er'] });
export type AgreementSolution = z.infer<typeof AgreementSolution>;

/** Agreement over one set of (PRL, ER) pairs. */
export const AgreementCell = z.strictObject({
  n: z.number().int().nonnegative(),
  /** Pearson correlation; null with fewer than two pairs or when either side is constant. */
  pearson: z.number().nullable(),
  /** Mean |PRL − ER|; null with no pairs. */
  meanAbsDiff: z.number().nullable(),
  meanPrl: z.number().nullable(),
  meanEr: z.number().nullable(),
});
export type AgreementCell = z.infer<typeof AgreementCell>;

export const AgreementRow = AgreementCell.extend({
  /** "1", "2", … per step position (1-based), "≥K" for the last bucket, "all" for the overall row. */
  position: z.string(),
});
export type AgreementRow = z.infer<typeof AgreementRow>;

export const AgreementTable = z.strictObject({
  /** One row per step position that has pairs, in order, then the overall row. */
  rows: z.array(AgreementRow),
  overall: AgreementCell,
  solutions: z.number().int().nonnegative(),
  /** Whether each solution's last step is in the table (see `AgreementOptions.lastStep`). */
  lastStep: z.enum(['include', 'exclude']),
  maxPosition: z.number().int().min(1),
});
export type AgreementTable = z.infer<typeof AgreementTable>;

export interface AgreementOptions {
  /** Positions from this one on share the bucket "≥maxPosition" (default 8). */
  maxPosition?: number;
  /**
   * The last step's ER label is the solution's own outcome (m = 1) and its PRL value is exactly the outcome too (the
   * paper's boundary), so last steps agree by construction and would flatter the overall row: excluded by default.
   */
  lastStep?: 'include' | 'exclude';
}

/** n, Pearson r, mean |x − y| and the two means, from sums over centred values (two passes: no cancellation). */
export function agreementCell(pairs: ReadonlyArray<readonly [number, number]>): AgreementCell {
  const n = pairs.length;
  if (n === 0) return { n: 0, pearson: null, meanAbsDiff: null, meanPrl: null, meanEr: null };
  let sx = 0;
  let sy = 0;
  let sad = 0;
  for (const [x, y] of pairs) {
    sx += x;
    sy += y;
    sad += Math.abs(x - y);
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let syy = 0;
  let sxy = 0;
  for (const [x, y] of pairs) {
    sxx += (x - mx) * (x - mx);
    syy += (y - my) * (y - my);
    sxy += (x - mx) * (y - my);
  }
  const pearson = n >= 2 && sxx > 0 && syy > 0 ? Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy))) : null;
  return { n, pearson, meanAbsDiff: sad / n, meanPrl: mx, meanEr: my };
}

/** The agreement table: per step position (1-based, the tail pooled at `maxPosition`) and overall. */
export function agreementTable(solutions: readonly AgreementSolution[], options: AgreementOptions = {}): AgreementTable {
  const maxPosition = options.maxPosition ?? 8;
  const lastStep = options.lastStep ?? 'exclude';
  if (!Number.isInteger(maxPosition) || maxPosition < 1) throw new BadInputError(`agreement table: maxPosition must be an integer ≥ 1, got ${maxPosition}`);
  const byPosition = new Map<number, Array<[number, number]>>();
  const all: Array<[number, number]> = [];
  for (const s of solutions) {
    if (s.prl.length !== s.er.length) {
      throw new BadInputError(`agreement table: solution ${s.id} has ${s.prl.length} PRL labels but ${s.er.length} ER labels; both must label the same steps`);
    }
    const upTo = lastStep === 'include' ? s.prl.length : s.prl.length - 1;
    for (let l = 0; l < upTo; l += 1) {
      const x = s.prl[l] as number;
      const y = s.er[l] as number;
      if (!Number.isFinite(x) || !Number.isFinite(y)) throw new BadInputError(`agreement table: solution ${s.id} step ${l + 1}: labels must be finite numbers (PRL ${x}, ER ${y})`);
      const position = Math.min(l + 1, maxPosition);
      const bucket = byPosition.get(position) ?? [];
      bucket.push([x, y]);
      byPosition.set(position, bucket);
      all.push([x, y]);
    }
  }
  const rows: AgreementRow[] = [...byPosition.keys()]
    .sort((a, b) => a - b)
    .map((p) => ({ position: p === maxPosition ? `≥${p}` : String(p), ...agreementCell(byPosition.get(p) as Array<[number, number]>) }));
  const overall = agreementCell(all);
  rows.push({ position: 'all', ...overall });
  return { rows, overall, solutions: solutions.length, lastStep, maxPosition };
}
