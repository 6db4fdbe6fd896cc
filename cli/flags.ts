// Flag parsing shared by every command: unknown flags are usage errors, not stack traces.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './load-config.js';

export const DEFAULT_CONFIG = 'configs/tiny.yaml';

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
}

/** The project root (where package.json is), whether running from dist/ or from the sources. */
export const projectRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();

export const DEFAULT_PYTHON = join(projectRoot, 'python-sft', '.venv', 'bin', 'python');

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** node's strict parser takes "--eta -1000" for a missing value; a number after one of `flags` is its value. */
export function joinNegativeNumbers(args: string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [arg, next] = [args[i] as string, args[i + 1]];
    if (flags.includes(arg) && next !== undefined && next.startsWith('-') && NUMBER.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** η of the ER label: any finite real number. */
export function etaFlag(raw: string | undefined, usage: string): number {
  const expected = 'a finite real number such as 2, -1000, 0.1 or 1e3';
  if (raw === undefined) throw new UsageError(`--eta is required: ${expected}\nusage: ${usage}`);
  const eta = NUMBER.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(eta)) throw new UsageError(`--eta: expected ${expected}, got "${raw}"`);
  return eta;
}
