// Process-reward labels of one step from its Monte-Carlo counts: k of m completions from the step's prefix
// reached the reference. Only counts are stored; every label kind and every η is derived here.
import { z } from 'zod';
import { BadInputError } from './errors.js';

export const StepCounts = z
  .strictObject({
    /** Completions from this step's prefix that reached the reference answer. */
    k: z.number().int().min(0),
    /** Completions sampled from this step's prefix. */
    m: z.number().int().min(1),
  })
  .refine((c) => c.k <= c.m, { message: 'k (completions reaching the reference) cannot exceed m (completions sampled)', path: ['k'] });
export type StepCounts = z.infer<typeof StepCounts>;

export const LabelKind = z.enum(['hard', 'soft', 'er']);
export type LabelKind = z.infer<typeof LabelKind>;

function checkCounts(k: number, m: number): void {
  const parsed = StepCounts.safeParse({ k, m });
  if (!parsed.success) throw new BadInputError(`step counts k=${k}, m=${m}: need integers with 0 ≤ k ≤ m and m ≥ 1`);
}

/** Math-Shepherd hard estimation: the step is good if any completion from it reaches the reference. */
export function hardLabel(k: number, m: number): number {
  checkCounts(k, m);
  return k > 0 ? 1 : 0;
}

/** Math-Shepherd soft estimation: the fraction of completions that reach the reference. */
export function softLabel(k: number, m: number): number {
  checkCounts(k, m);
  return k / m;
}

/**
 * Below this |η| the two-term series p + p(1−p)·η/2 is used: its error, the η² cumulant term
 * p(1−p)(1−2p)·η²/6, is under p·1.7e-17, i.e. below half an ulp of the result, while the closed form
 * loses accuracy once p·η underflows toward subnormals (and divides by zero at η = 0).
 */
const SERIES_BELOW = 1e-8;

/**
 * ER-PRM label (paper eq. 1): (1/η)·ln(1 − p + p·e^η) with p = k/m, for any finite η; negative η is the
 * soft-min form (eq. 2). Log-sum-exp with the larger exponent factored out, so nothing overflows:
 *   η < 0:  (1/η)·log1p(p·expm1(η))          (the larger exponent is 0)
 *   η > 0:  1 + (1/η)·log1p((1−p)·expm1(−η))  (the larger exponent is η; the mirror of the η < 0 form)
 * expm1 of a non-positive argument lies in (−1, 0], so log1p never sees overflow, and both forms keep full
 * precision as η → 0. Limits: η → 0 gives p, η → +∞ gives 1 for k > 0, η → −∞ gives 0 for k < m.
 */
export function erLabel(k: number, m: number, eta: number): number {
  checkCounts(k, m);
  if (!Number.isFinite(eta)) throw new BadInputError(`ER label: η must be a finite number, got ${eta}`);
  // Exact, for every η: all completions fail or all succeed.
  if (k === 0) return 0;
  if (k === m) return 1;
  const p = k / m;
  const q = (m - k) / m;
  let label: number;
  if (Math.abs(eta) < SERIES_BELOW) label = p + (p * q * eta) / 2;
  else if (eta < 0) label = Math.log1p(p * Math.expm1(eta)) / eta;
  else label = 1 + Math.log1p(q * Math.expm1(-eta)) / eta;
  // Rounding may step a hair outside the range the exact value lies in.
  return Math.min(1, Math.max(0, label));
}

/** A step's label of the given kind; `er` needs η. */
export function labelFromCounts(counts: StepCounts, kind: LabelKind, eta?: number): number {
  switch (kind) {
    case 'hard':
      return hardLabel(counts.k, counts.m);
    case 'soft':
      return softLabel(counts.k, counts.m);
    case 'er':
      if (eta === undefined) throw new BadInputError('the er label needs η (eta)');
      return erLabel(counts.k, counts.m, eta);
  }
}
