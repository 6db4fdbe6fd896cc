// prm-raft bon --scores FILE.jsonl — best-of-N, vote and pass@N curves from reward scores computed elsewhere.
import { BonOptions, bestOfNTable, bonTableMarkdown, ScoredResponse, type BonTable } from '../core/best-of-n.js';
import { formatIssues } from '../core/parse-config.js';
import { readJsonlLines } from '../store/files.js';
import { parseFlags } from './flags.js';
import { UsageError } from './load-config.js';

const USAGE = 'prm-raft bon --scores FILE.jsonl [--n 1,2,4,8] [--draws D] [--seed S] [--aggregate min|last|mean|prod] [--json]';

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
    },
    USAGE,
  );
  if (!values.scores || positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const raw = { n: values.n, draws: values.draws, seed: values.seed, aggregate: values.aggregate };
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

/** Reads and validates every line before computing: a bad line is a UsageError naming file and line. */
export async function bonFromScoresFile(path: string, opts: BonOptions): Promise<BonTable> {
  const responses: ScoredResponse[] = [];
  try {
    for await (const { line, text } of readJsonlLines(path)) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`${path}:${line}: not JSON (${(err as Error).message})`);
      }
      const parsed = ScoredResponse.safeParse(json, { reportInput: true });
      if (!parsed.success) throw new UsageError(`${path}:${line}: ${formatIssues(parsed.error.issues).join('; ')}`);
      responses.push(parsed.data);
    }
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${path}: cannot read the scores (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (responses.length === 0) throw new UsageError(`${path}: no responses (the file is empty); expected one JSON object per line`);
  return bestOfNTable(responses, opts);
}
