// A PRM training set from stored step counts: the labels are computed here, never sampled again.
import { z } from 'zod';
import type { LabeledSolution } from './labeling.js';
import { labelFromCounts, type LabelKind } from './labels.js';

export const ExportFormat = z.enum(['math-shepherd', 'jsonl']);
export type ExportFormat = z.infer<typeof ExportFormat>;

/** Math-Shepherd's step tag; it follows every step, and nothing else in the text may contain it. */
export const STEP_TAG = 'ки';

/** What prm_train.py reads: one label in [0, 1] per step, with the counts they came from. */
export interface JsonlExample {
  id: string;
  question: string;
  steps: string[];
  labels: number[];
  counts: Array<{ k: number; m: number }>;
  correct: boolean;
}

/**
 * Math-Shepherd's layout: `input` is the question and the steps, each followed by the tag; `label` is the same
 * text with each tag replaced by `+` or `-` (label ≥ 0.5); `value` keeps the exact labels, one per tag.
 */
export interface MathShepherdExample {
  id: string;
  input: string;
  label: string;
  value: number[];
}

/** The example for one solution, or null when it has nothing to learn from (no steps, or a refused prefix). */
export function exportExample(s: LabeledSolution, kind: LabelKind, eta: number | undefined, format: ExportFormat): JsonlExample | MathShepherdExample | null {
  if (s.error !== undefined || s.steps.length === 0 || s.counts.length !== s.steps.length) return null;
  const labels = s.counts.map((c) => labelFromCounts(c, kind, eta));
  if (format === 'jsonl') return { id: s.id, question: s.question, steps: s.steps, labels, counts: s.counts, correct: s.correct };
  const untagged = (text: string) => text.split(STEP_TAG).join(' ');
  const lines = (mark: (i: number) => string) => s.steps.map((step, i) => `${untagged(step)} ${mark(i)}`).join('\n');
  const question = untagged(s.question);
  return {
    id: s.id,
    input: `${question} ${lines(() => STEP_TAG)}`,
    label: `${question} ${lines((i) => ((labels[i] as number) >= 0.5 ? '+' : '-'))}`,
    value: labels,
  };
}
