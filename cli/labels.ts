// prm-raft labels --k K --m M --eta ETA — one step's hard, soft and ER labels from its Monte-Carlo counts.
import { erLabel, hardLabel, softLabel } from '../core/labels.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';

const USAGE = 'prm-raft labels --k K --m M --eta ETA';
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const FLAGS = ['--k', '--m', '--eta'];

export async function labelsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    joinNegativeValues(args),
    { k: { type: 'string' }, m: { type: 'string' }, eta: { type: 'string' } },
    USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"\nusage: ${USAGE}`);
  const m = integerFlag('m', values.m, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
  const k = integerFlag('k', values.k, 0, m, `an integer from 0 to --m (${m})`);
  const eta = etaFlag(values.eta);
  process.stdout.write(`${JSON.stringify({ hard: hardLabel(k, m), soft: softLabel(k, m), er: erLabel(k, m, eta) })}\n`);
  return 0;
}

/** node's strict parser takes "--eta -1000" for a missing value; a number after one of our flags is its value. */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [arg, next] = [args[i] as string, args[i + 1]];
    if (FLAGS.includes(arg) && next !== undefined && next.startsWith('-') && NUMBER.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function integerFlag(name: string, raw: string | undefined, min: number, max: number, expected: string): number {
  if (raw === undefined) throw new UsageError(`--${name} is required: ${expected}\nusage: ${USAGE}`);
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected ${expected}, got "${raw}"`);
  return n;
}

function etaFlag(raw: string | undefined): number {
  const expected = 'a finite real number such as 2, -1000, 0.1 or 1e3';
  if (raw === undefined) throw new UsageError(`--eta is required: ${expected}\nusage: ${USAGE}`);
  const eta = NUMBER.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(eta)) throw new UsageError(`--eta: expected ${expected}, got "${raw}"`);
  return eta;
}
