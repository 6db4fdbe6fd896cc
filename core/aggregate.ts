// A response's score from its step scores: the paper ranks by the minimum.
import { z } from 'zod';

export const Aggregation = z.enum(['min', 'last', 'mean', 'prod']);
export type Aggregation = z.infer<typeof Aggregation>;

/** NaN for no steps: a response without steps has no score and is never selected over one that has. */
export function aggregateStepScores(scores: readonly number[], how: Aggregation): number {
  if (scores.length === 0) return Number.NaN;
  switch (how) {
    case 'min':
      return Math.min(...scores);
    case 'last':
      return scores[scores.length - 1] as number;
    case 'mean':
      return scores.reduce((a, b) => a + b, 0) / scores.length;
    case 'prod':
      return scores.reduce((a, b) => a * b, 1);
  }
}
