// Standard errors of accuracies, so that a change is read against the noise of the test set that measured it.

/** Binomial standard error of an accuracy p measured on n questions, √(p(1−p)/n); NaN without questions. */
export function accuracyStandardError(p: number, n: number): number {
  return n > 0 ? Math.sqrt((p * (1 - p)) / n) : Number.NaN;
}

/**
 * Standard error of the difference of two accuracies with standard errors se1 and se2: √(SE1² + SE2²), the form
 * for independent test sets. Two evaluations of one test set are paired (their errors correlate positively), so
 * for them it is conservative: it overstates the noise.
 */
export function differenceStandardError(se1: number, se2: number): number {
  return Math.sqrt(se1 * se1 + se2 * se2);
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

/** "+4.6 ± 1.6 (2.9 SE)": a change in percentage points, its standard error, and how many of those it is. */
export function formatChange(delta: number, se: number): string {
  const ses = se > 0 ? ` (${(Math.abs(delta) / se).toFixed(1)} SE)` : '';
  return `${signedPointsText(delta)} ± ${percentText(se)}${ses}`;
}
