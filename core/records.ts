// Records that cross a boundary (files, processes, workflows): one zod schema each, types inferred.
import { z } from 'zod';

export const DatasetSource = z.enum(['gsm8k', 'math', 'math500', 'omi2', 'tinymath']);
export type DatasetSource = z.infer<typeof DatasetSource>;

/** How an answer is graded: MATH-style LaTeX, GSM8K-style numbers, or tinymath integers. */
export const AnswerKind = z.enum(['math', 'gsm8k', 'tinymath']);
export type AnswerKind = z.infer<typeof AnswerKind>;

/** One problem, whatever dataset it came from. */
export const ProblemRecord = z.strictObject({
  id: z.string().min(1),
  source: DatasetSource,
  question: z.string().min(1),
  answer: z.string().min(1),
  answerKind: AnswerKind,
  solution: z.string().optional(),
  meta: z
    .strictObject({
      level: z.number().int().optional(),
      subject: z.string().optional(),
      problemSource: z.string().optional(),
    })
    .optional(),
});
export type ProblemRecord = z.infer<typeof ProblemRecord>;
