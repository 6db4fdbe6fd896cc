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
  return stepSpans(response, how).map((s) => s.text);
}

/**
 * The steps with where each ends in the response, separator included: `response.slice(0, end)` is the
 * prefix a Monte-Carlo completer continues from, exactly as the policy wrote it.
 */
export function stepSpans(response: string, how: StepSplitConfig): Array<{ text: string; end: number }> {
  const source = how.by === 'newline' ? '\\r?\\n' : how.by === 'blank-line' ? '\\r?\\n[ \\t]*\\r?\\n' : how.pattern;
  const spans: Array<{ text: string; end: number }> = [];
  let from = 0;
  const take = (until: number, end: number) => {
    const text = response.slice(from, until).trim();
    if (text.length > 0) spans.push({ text, end });
  };
  for (const m of response.matchAll(new RegExp(source, 'gu'))) {
    if (m[0].length === 0) continue;
    take(m.index, m.index + m[0].length);
    from = m.index + m[0].length;
  }
  take(response.length, response.length);
  return spans;
}
