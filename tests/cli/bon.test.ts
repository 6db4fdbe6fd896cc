// `prm-raft bon --scores`: the built CLI on small JSONL files, as a user runs it.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/stack.js';

const CLI = join(ROOT, 'bin', 'prm-raft.js');
let dir: string;

async function bon(args: string[]) {
  const r = await execa(process.execPath, [CLI, 'bon', ...args], { cwd: ROOT, reject: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function expectUsageErrors(cases: [string[], string][]): Promise<void> {
  for (const [args, message] of cases) {
    const r = await bon(args);
    expect(r.exitCode, args.join(' ')).toBe(2);
    expect(r.stdout, args.join(' ')).toBe('');
    expect(r.stderr, args.join(' ')).toContain(message);
  }
}

async function jsonl(name: string, lines: unknown[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return path;
}

// Problem p: three low-scored votes for a wrong 7, two high-scored for the right 8; q: the top score is wrong.
const known = [
  { problem_id: 'p', answer: '7', correct: false, step_scores: [0.1, 0.3] },
  { problem_id: 'p', answer: '7', correct: false, step_scores: [0.2] },
  { problem_id: 'p', answer: '7', correct: false, step_scores: [0.1] },
  { problem_id: 'p', answer: '8', correct: true, step_scores: [0.9, 0.95] },
  { problem_id: 'p', answer: '8', correct: true, step_scores: [0.6] },
  { problem_id: 'q', answer: '3', correct: true, step_scores: [0.5] },
  { problem_id: 'q', answer: '3', correct: true, step_scores: [0.5] },
  { problem_id: 'q', answer: '4', correct: false, step_scores: [0.9] },
];

beforeAll(async () => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `make build` (make test does)');
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-bon-'));
});

describe('prm-raft bon --scores', () => {
  it('prints the table as JSON with a top-level results array', async () => {
    const path = await jsonl('known.jsonl', known);
    const r = await bon(['--scores', path, '--n', '5', '--json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)[0]).toBe('results');
    expect(out).toEqual({
      results: [{ n: 5, best_of_n: 0.5, majority: 0.5, weighted: 1, pass_at_n: 1, spread: 0, problems_short: 1 }],
      aggregate: 'min',
      draws: 10,
      seed: 0,
      problems: 2,
      reward_hacking: null,
      notes: ['1 of 2 problems have fewer than 5 responses; they use all they have'],
    });
  });

  it('defaults to powers of two up to the largest count and prints Markdown', async () => {
    const path = await jsonl('known-md.jsonl', known);
    const r = await bon(['--scores', path, '--draws', '3', '--seed', '7', '--aggregate', 'last']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Best-of-N over 2 problems, last aggregation, mean of 3 draws (seed 7)');
    expect(r.stdout).toContain('| N | best-of-N ± spread | majority | weighted | pass@N |');
    expect(r.stdout).toMatch(/^\| 5 \| 0\.500 ± 0\.000 \| 0\.500 \| 1\.000 \| 1\.000 \|$/m);
    expect(r.stdout.match(/^\| \d+ \|/gm)).toEqual(['| 1 |', '| 2 |', '| 4 |', '| 5 |']);
    expect(r.stdout).toContain('- 1 of 2 problems have fewer than 4 responses; they use all they have');
  });

  it('names the file, the line and the problem for a bad line, and prints nothing', async () => {
    const path = await jsonl('bad.jsonl', [known[0], { problem_id: 'p', answer: '7', correct: 'yes', step_scores: [0.1] }]);
    const r = await bon(['--scores', path, '--json']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${path}:2: correct: expected boolean, received string`);
  });

  it('refuses a step score outside [0, 1], as the PRM client does', async () => {
    const path = await jsonl('range.jsonl', [known[0], { problem_id: 'p', answer: '7', correct: false, step_scores: [0.2, 1.5] }]);
    const r = await bon(['--scores', path]);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${path}:2: step_scores.1: expected scores in [0, 1]`);
  });

  it('says which line is not JSON', async () => {
    const path = await jsonl('notjson.jsonl', [known[0], '', '{"problem_id": ']);
    const r = await bon(['--scores', path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${path}:3: not JSON`);
  });

  // Each run of the CLI takes a few seconds: the cases are split so no test nears the timeout.
  it('refuses an empty file, a missing file and a missing --scores with exit 2', async () => {
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '');
    await expectUsageErrors([
      [['--scores', empty], 'no responses'],
      [['--scores', join(dir, 'absent.jsonl')], 'cannot read the responses (ENOENT)'],
      [[], 'usage: prm-raft bon --scores FILE.jsonl'],
    ]);
  });

  it('refuses bad flag values with exit 2, naming the flag', async () => {
    const path = await jsonl('flags.jsonl', known);
    await expectUsageErrors([
      [['--scores', path, '--n', '4,2'], '--n: expected ascending values without repeats, got "4,2"'],
      [['--scores', path, '--n', '1,x'], '--n: expected positive integers, got "1,x"'],
      [['--scores', path, '--draws', '0'], '--draws: expected a positive integer, got "0"'],
      [['--scores', path, '--draws', '100000000'], '--draws: expected at most 10000 draws, got "100000000"'],
      [['--scores', path, '--aggregate', 'max'], '--aggregate: expected one of "min"|"last"|"mean"|"prod", got "max"'],
    ]);
  });
});
