// prm-raft labels --k K --m M --eta ETA — one step's hard, soft and ER labels from its Monte-Carlo counts.
import { erLabel, hardLabel, softLabel } from '../core/labels.js';
import { etaFlag, joinNegativeNumbers, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';

const USAGE = 'prm-raft labels --k K --m M --eta ETA';

export async function labelsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    joinNegativeNumbers(args, ['--k', '--m', '--eta']),
    { k: { type: 'string' }, m: { type: 'string' }, eta: { type: 'string' } },
    USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const m = integerFlag('m', values.m, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
  const k = integerFlag('k', values.k, 0, m, `an integer from 0 to --m (${m})`);
  const eta = etaFlag(values.eta, USAGE);
  process.stdout.write(`${JSON.stringify({ hard: hardLabel(k, m), soft: softLabel(k, m), er: erLabel(k, m, eta) })}\n`);
  return 0;
}

function integerFlag(name: string, raw: string | undefined, min: number, max: number, expected: string): number {
  if (raw === undefined) throw new UsageError(`--${name} is required: ${expected}\nusage: ${USAGE}`);
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected ${expected}, got "${raw}"`);
  return n;
}
