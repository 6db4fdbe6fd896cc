// A JSONL file read whole and checked line by line against a zod schema: a bad line is named by file and line.
import type { z } from 'zod';
import { BadInputError } from '../core/errors.js';
import { formatIssues } from '../core/parse-config.js';
import { readJsonlLines } from './files.js';

/** Every non-blank line, parsed and validated, with its 1-based line number; an empty or unreadable file is an error. */
export async function readValidatedJsonl<T extends z.ZodType>(path: string, schema: T, what: string): Promise<Array<{ line: number; value: z.infer<T> }>> {
  const out: Array<{ line: number; value: z.infer<T> }> = [];
  try {
    for await (const { line, text } of readJsonlLines(path)) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new BadInputError(`${path}:${line}: not JSON (${(err as Error).message})`);
      }
      const parsed = schema.safeParse(json, { reportInput: true });
      if (!parsed.success) throw new BadInputError(`${path}:${line}: ${formatIssues(parsed.error.issues).join('; ')}`);
      out.push({ line, value: parsed.data });
    }
  } catch (err) {
    if (err instanceof BadInputError) throw err;
    throw new BadInputError(`${path}: cannot read the ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (out.length === 0) throw new BadInputError(`${path}: no ${what} (the file is empty); expected one JSON object per line`);
  return out;
}
