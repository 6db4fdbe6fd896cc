// Standard errors of accuracies and of their changes, and how they are printed.
import { describe, expect, it } from 'vitest';
import { accuracyStandardError, formatAccuracy, formatChange, pairedChange, signedPointsText, withinNoise } from '../../core/stats.js';

describe('standard errors', () => {
  it('is √(p(1−p)/n) for an accuracy, zero at 0 and 1, and NaN without questions', () => {
    // 206/500: √(0.412 · 0.588 / 500) = 0.02201
    expect(accuracyStandardError(0.412, 500)).toBeCloseTo(0.02201, 5);
    expect(accuracyStandardError(0.5, 100)).toBe(0.05);
    expect(accuracyStandardError(0, 10)).toBe(0);
    expect(accuracyStandardError(1, 10)).toBe(0);
    expect(accuracyStandardError(0.5, 0)).toBeNaN();
  });

  it('measures a change on one test set from the questions gained and lost, paired', () => {
    // A real run: 2,000 questions, 136 gained, 49 lost. Δ = 87/2000; √((185/2000 − 0.0435²)/2000) = 0.00673,
    // where the independent-samples form said 0.0155.
    const { delta, standardError } = pairedChange(136, 49, 2000);
    expect(delta).toBeCloseTo(0.0435, 12);
    expect(standardError).toBeCloseTo(0.006731, 6);
    // 3 gained, none lost, of 10: √((0.3 − 0.09)/10).
    expect(pairedChange(3, 0, 10).standardError).toBeCloseTo(0.144914, 6);
    // Losses count against: the same counts the other way round are the same size, negative.
    expect(pairedChange(49, 136, 2000)).toEqual({ delta: -0.0435, standardError: standardError });
  });

  it('has no noise when no question changed, or when every question moved the same way', () => {
    expect(pairedChange(0, 0, 500)).toEqual({ delta: 0, standardError: 0 });
    expect(pairedChange(7, 0, 7)).toEqual({ delta: 1, standardError: 0 });
  });

  it('is NaN without questions', () => {
    const { delta, standardError } = pairedChange(0, 0, 0);
    expect(delta).toBeNaN();
    expect(standardError).toBeNaN();
  });

  it('calls a change within two standard errors noise', () => {
    expect(withinNoise(0.03, 0.016)).toBe(true);
    expect(withinNoise(-0.031, 0.016)).toBe(true);
    expect(withinNoise(0.033, 0.016)).toBe(false);
    expect(withinNoise(-0.064, 0.0306)).toBe(false);
  });
});

describe('formatting', () => {
  it('prints an accuracy in percent with its standard error', () => {
    expect(formatAccuracy(0.412, 0.011)).toBe('41.2% ± 1.1');
    expect(formatAccuracy(1, 0)).toBe('100.0% ± 0.0');
  });

  it('prints a change in signed points with its standard error and how many of them it is', () => {
    expect(formatChange(0.046, 0.016)).toBe('+4.6 ± 1.6 (2.9 SE)');
    expect(formatChange(-0.064, 0.0306)).toBe('-6.4 ± 3.1 (2.1 SE)');
    // No standard error to count in: left out rather than "Infinity SE".
    expect(formatChange(0, 0)).toBe('0.0 ± 0.0');
    // A paired change, and a note alone when there is no standard error to count in.
    expect(formatChange(0.0436, 0.006731, 'paired')).toBe('+4.4 ± 0.7 (6.5 SE, paired)');
    expect(formatChange(0, 0, 'paired')).toBe('0.0 ± 0.0 (paired)');
  });

  it('never prints "-0.0"', () => {
    expect(signedPointsText(-0.0001)).toBe('0.0');
    expect(formatChange(-0.0001, 0.01)).toBe('0.0 ± 1.0 (0.0 SE)');
  });
});
