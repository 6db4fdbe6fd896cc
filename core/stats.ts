// Standard errors of accuracies, so that a change is read against the noise of the test set that measured it.

/** Binomial standard error of an accuracy p measured on n questions, √(p(1−p)/n); NaN without questions. */
export function accuracyStandardError(p: number, n: number): number {
  return n > 0 ? Math.sqrt((p * (1 - p)) / n) : Number.NaN;
}

/**
 * The change between two evaluations of the same n questions, from the questions only one of them got right:
 * g gained (right after, wrong before) and l lost. Δ = (g − l)/n, and its paired standard error is
 * √((g + l)/n − Δ²)/√n, the spread of the per-question differences (+1, −1 or 0). The questions both got right or
 * both got wrong add no noise, which is why this is far smaller than the independent-samples √(SE₁² + SE₂²).
 * NaN for both without questions.
 */
export function pairedChange(gained: number, lost: number, total: number): { delta: number; standardError: number } {
  if (total <= 0) return { delta: Number.NaN, standardError: Number.NaN };
  const delta = (gained - lost) / total;
  // max(0, …): a rounding error must not make the variance negative.
  return { delta, standardError: Math.sqrt(Math.max(0, (gained + lost) / total - delta * delta) / total) };
}

/** A change smaller than two of its standard errors cannot be told from noise. */
export function withinNoise(delta: number, se: number): boolean {
  return Math.abs(delta) < 2 * se;
}

/** A fraction as percent with one decimal, never "-0.0": 0.7791 → "77.9". */
export function percentText(x: number): string {
  const s = (100 * x).toFixed(1);
  return Number(s) === 0 ? s.replace('-', '') : s;
}

/** A change (a fraction) in signed percentage points: 0.016 → "+1.6", -0.003 → "-0.3", 0 → "0.0". */
export function signedPointsText(x: number): string {
  const s = percentText(x);
  return Number(s) > 0 ? `+${s}` : s;
}

/** "41.2% ± 1.1": an accuracy and its standard error, both in percent. */
export function formatAccuracy(p: number, se: number): string {
  return `${percentText(p)}% ± ${percentText(se)}`;
}

/**
 * "+4.6 ± 1.6 (2.9 SE)": a change in percentage points, its standard error, and how many of those it is; with a
 * note on how the standard error was taken, "+4.4 ± 0.7 (6.5 SE, paired)".
 */
export function formatChange(delta: number, se: number, note?: string): string {
  const inside = [se > 0 ? `${(Math.abs(delta) / se).toFixed(1)} SE` : '', note ?? ''].filter(Boolean).join(', ');
  return `${signedPointsText(delta)} ± ${percentText(se)}${inside ? ` (${inside})` : ''}`;
}
