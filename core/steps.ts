// The one step splitter: scoring, selection and PRM training data all cut responses the same way.
import { z } from 'zod';

export const StepSplitConfig = z.discriminatedUnion('by', [
  z.strictObject({ by: z.literal('newline') }),
  z.strictObject({ by: z.literal('blank-line') }),
  z.strictObject({
    by: z.literal('regex'),
    /** A JavaScript regular expression source; steps are the text between its matches. */
    pattern: z.string().refine(isValidRegex, { error: 'expected a valid regular expression' }),
  }),
]);
export type StepSplitConfig = z.infer<typeof StepSplitConfig>;

function isValidRegex(source: string): boolean {
  try {
    new RegExp(source, 'u');
    return true;
  } catch {
    return false;
  }
}

/** Non-empty, trimmed steps of a response; a response with no text has no steps. */
export function splitSteps(response: string, how: StepSplitConfig): string[] {
  const separator = how.by === 'newline' ? /\r?\n/u : how.by === 'blank-line' ? /\r?\n[ \t]*\r?\n/u : new RegExp(how.pattern, 'u');
  return response
    .split(separator)
    .map((s) => (s ?? '').trim())
    .filter((s) => s.length > 0);
}
