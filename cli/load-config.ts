// Reading a config file for a command: every problem reported, exit code 2, never a stack trace.
import { readFile } from 'node:fs/promises';
import type { Config } from '../core/config.js';
import { parseConfigText } from '../core/parse-config.js';

/** Bad input from the command line: printed as is, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export async function loadConfig(path: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${path}: cannot read the config (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const parsed = parseConfigText(text, path);
  if (!parsed.ok) throw new UsageError(`${path}: invalid config\n${parsed.problems.map((p) => `  ${p}`).join('\n')}`);
  return parsed.config;
}
