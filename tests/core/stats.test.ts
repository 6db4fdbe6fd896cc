// Standard errors of accuracies and of their changes, and how they are printed.
import { describe, expect, it } from 'vitest';
import { accuracyStandardError, differenceStandardError, formatAccuracy, formatChange, signedPointsText, withinNoise } from '../../core/stats.js';

describe('standard errors', () => {
  it('is √(p(1−p)/n) for an accuracy, zero at 0 and 1, and NaN without questions', () => {
    // 206/500: √(0.412 · 0.588 / 500) = 0.02201
    expect(accuracyStandardError(0.412, 500)).toBeCloseTo(0.02201, 5);
    expect(accuracyStandardError(0.5, 100)).toBe(0.05);
    expect(accuracyStandardError(0, 10)).toBe(0);
    expect(accuracyStandardError(1, 10)).toBe(0);
    expect(accuracyStandardError(0.5, 0)).toBeNaN();
  });

  it('adds the variances of two accuracies for their difference', () => {
    expect(differenceStandardError(0.03, 0.04)).toBeCloseTo(0.05, 12);
    expect(differenceStandardError(0, 0.02)).toBeCloseTo(0.02, 12);
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
  });

  it('never prints "-0.0"', () => {
    expect(signedPointsText(-0.0001)).toBe('0.0');
    expect(formatChange(-0.0001, 0.01)).toBe('0.0 ± 1.0 (0.0 SE)');
  });
});
