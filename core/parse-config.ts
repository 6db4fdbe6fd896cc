// YAML text → validated Config, or every problem named by its path. Pure: the caller reads the file.
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { Config } from './config.js';

export type ConfigParse = { ok: true; config: Config } | { ok: false; problems: string[] };

export function parseConfigText(text: string, fileName: string): ConfigParse {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const at = e.linePos?.[0];
        const where = at ? `${fileName}:${at.line}:${at.col}` : fileName;
        return `${where}: unreadable YAML: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
    };
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return { ok: false, problems: [`${fileName}: expected a YAML mapping at the top level`] };
  }
  const parsed = Config.safeParse(raw, { reportInput: true });
  if (parsed.success) return { ok: true, config: parsed.data };
  return { ok: false, problems: formatIssues(parsed.error.issues) };
}

/** `sampling.n: expected a positive integer, got "16x"` — one line per problem, by path. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => `${issue.path.length ? `${path}.` : ''}${k}: unknown key`);
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // The alternative the value came closest to says what to fix (for a reward model: served or trained).
      const closest = issue.errors.reduce((a, b) => (b.length < a.length ? b : a));
      return formatIssues(closest.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) return [`${path}: required`];
    // A custom check's message already says what is wrong with the whole value.
    const got = issue.code !== 'custom' && issue.input !== undefined ? `, got ${describe(issue.input)}` : '';
    return [`${path}: ${issue.message.replace(/^Invalid (input|option): /, '')}${got}`];
  });
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
