// prm-raft bon — best-of-N, vote and pass@N curves: from a config (sample, score with every reward model, tables),
// or from reward scores computed elsewhere (--scores).
import { BonOptions, bestOfNInputFromConfig, bestOfNTable, bonTableMarkdown, ScoredResponse, type BonTable } from '../core/best-of-n.js';
import { BadInputError } from '../core/errors.js';
import { readValidatedJsonl } from '../store/validated-jsonl.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { startFromConfig } from './run-workflow.js';

const USAGE = `prm-raft bon --scores FILE.jsonl [--n 1,2,4,8] [--draws D] [--seed S] [--aggregate min|last|mean|prod] [--json]
       prm-raft bon --config FILE [--json] [--detach]`;

export async function bonCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      scores: { type: 'string' },
      n: { type: 'string' },
      draws: { type: 'string' },
      seed: { type: 'string' },
      aggregate: { type: 'string' },
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
      detach: { type: 'boolean', default: false },
    },
    USAGE,
  );
  const raw = { n: values.n, draws: values.draws, seed: values.seed, aggregate: values.aggregate };
  if (values.config !== undefined && values.scores === undefined && positionals.length === 0) {
    const given = Object.entries(raw).flatMap(([flag, v]) => (v === undefined ? [] : [`--${flag}`]));
    if (given.length > 0) throw new UsageError(`${given.join(', ')}: with --config, set bestOfN.ns, draws, seed and aggregations in the config`);
    return bonFromConfig(values.config, { json: values.json, detach: values.detach });
  }
  if (!values.scores || values.config !== undefined || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  if (values.detach) throw new UsageError(`--detach goes with --config: --scores computes at once\nusage: ${USAGE}`);
  // Number('') is 0 and Number(' 2') is 2: only plain digits count as integers here.
  const int = (s: string) => (/^\d+$/.test(s.trim()) ? Number(s) : Number.NaN);
  const parsed = BonOptions.safeParse({
    ns: raw.n === undefined ? undefined : raw.n.split(',').map(int),
    draws: raw.draws === undefined ? undefined : int(raw.draws),
    seed: raw.seed === undefined ? undefined : int(raw.seed),
    aggregate: raw.aggregate,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = issue?.path[0] === 'ns' ? 'n' : (String(issue?.path[0]) as keyof typeof raw);
    throw new UsageError(`--${flag}: ${issue?.message.replace(/^Invalid (input|option): /, '')}, got "${raw[flag]}"`);
  }
  const table = await bonFromScoresFile(values.scores, parsed.data);
  const { results, ...rest } = table;
  process.stdout.write(values.json ? `${JSON.stringify({ results, ...rest }, null, 2)}\n` : bonTableMarkdown(table));
  return 0;
}

/** Starts the bestOfN workflow and follows it; the tables come at the end. */
function bonFromConfig(path: string, opts: { json: boolean; detach: boolean }): Promise<number> {
  return startFromConfig(path, { type: 'bestOfN', idPrefix: 'bon', inputOf: bestOfNInputFromConfig, datasetsOf: (i) => i.sampling.datasets }, opts);
}

/** Reads and validates every line before computing: a bad line is a UsageError naming file and line. */
export async function bonFromScoresFile(path: string, opts: BonOptions): Promise<BonTable> {
  let responses: ScoredResponse[];
  try {
    responses = (await readValidatedJsonl(path, ScoredResponse, 'responses')).map((r) => r.value);
  } catch (err) {
    if (err instanceof BadInputError) throw new UsageError(err.message);
    throw err;
  }
  return bestOfNTable(responses, opts);
}
