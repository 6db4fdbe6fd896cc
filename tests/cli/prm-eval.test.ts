// `prm-raft prm eval`: scores from a file and from a live (stub) PRM whose error steps are known, on the ProcessBench
// fixtures. The command runs in this process from the sources (dist/ is built by `make build` and used by a running
// worker, so these tests do not depend on it); exit code 2 is what main.ts makes of the UsageErrors checked here.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { prmCommand } from '../../cli/prm.js';
import { UsageError } from '../../cli/load-config.js';
import { PrmEvalOutput, type BenchmarkRecord } from '../../core/processbench.js';
import { ROOT } from '../helpers/stack.js';
import { startStubServer, type StubServer } from '../helpers/stub-server.js';

const DATA = join(ROOT, 'tests', 'fixtures', 'processbench');
const SUBSETS = ['gsm8k', 'math', 'olympiadbench', 'omnimath'] as const;
let dir: string;
const fixtures: Record<string, BenchmarkRecord[]> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-prm-eval-'));
  for (const s of SUBSETS) fixtures[s] = JSON.parse(await readFile(join(DATA, `${s}.json`), 'utf8')) as BenchmarkRecord[];
});

const servers: StubServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Runs `prm-raft prm ARGS` and collects what it writes. */
async function prm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    return { code: await prmCommand(args), stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

async function usageError(args: string[]): Promise<string> {
  const err = await prm(args).catch((e: unknown) => e);
  expect(err, args.join(' ')).toBeInstanceOf(UsageError);
  return (err as Error).message;
}

/**
 * A PRM whose picks are known: on gsm8k and math it scores 0.1 exactly at the labelled error (0.9 elsewhere), so it
 * is right on every record; on olympiadbench it flags step 0 of every record (right on none: no label there is 0);
 * on omnimath it flags nothing (right on the error-free records only). F1: 1, 1, 0, 0; average 0.5 for any
 * threshold in (0.1, 0.9].
 */
function knownScores(subset: string, record: Pick<BenchmarkRecord, 'steps' | 'label'>): number[] {
  const low = subset === 'olympiadbench' ? 0 : subset === 'omnimath' ? -1 : record.label;
  return record.steps.map((_, i) => (i === low ? 0.1 : 0.9));
}

const expectedAt = (threshold: number) => ({
  threshold,
  subsets: [
    { subset: 'gsm8k', error_accuracy: 1, correct_accuracy: 1, f1: 1, n: 5 },
    { subset: 'math', error_accuracy: 1, correct_accuracy: 1, f1: 1, n: 5 },
    { subset: 'olympiadbench', error_accuracy: 0, correct_accuracy: 0, f1: 0, n: 5 },
    { subset: 'omnimath', error_accuracy: 0, correct_accuracy: 1, f1: 0, n: 5 },
  ],
  average_f1: 0.5,
});

async function scoresFile(name: string, lines: unknown[]): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return path;
}

const knownLines = () => SUBSETS.flatMap((subset) => (fixtures[subset] ?? []).map((r) => ({ subset, id: r.id, step_scores: knownScores(subset, r) })));

describe('prm-raft prm eval --scores', () => {
  it('prints exactly the JSON shape at the threshold tuned on gsm8k (the lowest of the best)', async () => {
    const r = await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', await scoresFile('known.jsonl', knownLines()), '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('}\n')).toBe(true);
    const out = JSON.parse(r.stdout);
    expect(out).toEqual(expectedAt(0.15));
    expect(PrmEvalOutput.safeParse(out).success).toBe(true);
  });

  it('uses --threshold as given; at 0.1 nothing scored 0.1 is below it', async () => {
    const path = await scoresFile('fixed.jsonl', knownLines().reverse());
    expect(JSON.parse((await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', path, '--threshold', '0.5', '--json'])).stdout)).toEqual(expectedAt(0.5));
    const low = JSON.parse((await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', path, '--threshold', '0.1', '--json'])).stdout);
    // Everything predicted error-free: error accuracy 0 everywhere, so every F1 is 0.
    expect(low.subsets.map((s: { correct_accuracy: number; f1: number }) => [s.correct_accuracy, s.f1])).toEqual([[1, 0], [1, 0], [1, 0], [1, 0]]);
  });

  it('prints the table, the published figures and the sweep as Markdown, and writes the page with --html', async () => {
    const page = join(dir, 'report', 'prm-eval.html');
    const r = await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', await scoresFile('md.jsonl', knownLines()), '--html', page]);
    expect(r.stdout).toContain('first step scored below 0.15 (best F1 on gsm8k in the sweep)');
    expect(r.stdout).toMatch(/^\| omnimath \| 5 \| 0\.0 \| 100\.0 \| 0\.0 \|$/m);
    expect(r.stdout).toContain('| average F1 |  |  |  | 50.0 |');
    expect(r.stdout).toContain('Math-Shepherd-PRM-7B: 31.5');
    expect(r.stdout).toContain('| 0.15 ← | 100.0 | 100.0 | 0.0 | 0.0 | 50.0 |');
    const html = await readFile(page, 'utf8');
    expect(html).toContain('<title>PRM evaluation on processbench</title>');
    expect(html).toContain('0.15 ←');
  });

  it('reads tinymath from one file in the same format', async () => {
    const gsm8k = (fixtures.gsm8k ?? []).map((r) => ({ subset: 'tinymath', id: r.id, step_scores: knownScores('gsm8k', r) }));
    const r = await prm(['eval', '--benchmark', 'tinymath', '--data', join(DATA, 'gsm8k.json'), '--scores', await scoresFile('tiny.jsonl', gsm8k), '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ threshold: 0.15, subsets: [{ subset: 'tinymath', error_accuracy: 1, correct_accuracy: 1, f1: 1, n: 5 }], average_f1: 1 });
  });

  it('names the file and line of a wrong-length, unknown, out-of-range or unreadable score line', async () => {
    const lines = knownLines();
    const short = { ...lines[2], step_scores: [0.5] } as (typeof lines)[number];
    const cases: Array<[unknown[], string]> = [
      [[...lines.slice(0, 2), short, ...lines.slice(3)], `short.jsonl:3: record gsm8k/${lines[2]?.id} has ${fixtures.gsm8k?.[2]?.steps.length} steps but 1 scores`],
      [[...lines, { subset: 'math', id: 'math-999999', step_scores: [0.5] }], 'unknown.jsonl:21: no record "math-999999" in subset "math"'],
      [[...lines.slice(1), { ...lines[0], step_scores: [0.5, 1.5, 0.5, 0.5] }], 'range.jsonl:20: step_scores.1: expected scores in [0, 1]'],
      [[...lines.slice(0, 4), '{"subset": "gsm8k",'], 'notjson.jsonl:5: not JSON'],
    ];
    for (const [[...content], message] of cases) {
      const name = `${message.split(':')[0]}`;
      expect(await usageError(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', await scoresFile(name, content)])).toContain(message);
    }
  });

  it('names the records without a score line', async () => {
    const path = await scoresFile('missing.jsonl', knownLines().slice(1));
    expect(await usageError(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', path])).toContain(`no score line for record gsm8k/${fixtures.gsm8k?.[0]?.id}: every record`);
  });

  it('refuses bad flags and missing data, saying what to do', async () => {
    const path = await scoresFile('flags.jsonl', knownLines());
    const base = ['eval', '--data', DATA, '--scores', path];
    expect(await usageError(base)).toContain('--benchmark: is required');
    expect(await usageError([...base, '--benchmark', 'prm800k'])).toContain('--benchmark: expected processbench or tinymath, got "prm800k"');
    expect(await usageError([...base, '--benchmark', 'processbench', '--threshold', '1.5'])).toContain('--threshold: expected a number in [0, 1], got "1.5"');
    expect(await usageError([...base, '--benchmark', 'processbench', '--threshold', 'x'])).toContain('--threshold: expected a number in [0, 1], got "x"');
    expect(await usageError([...base, '--benchmark', 'processbench', '--config', 'configs/tiny.yaml'])).toContain('--scores reads scores computed elsewhere');
    expect(await usageError(['eval', '--benchmark', 'processbench', '--data', join(dir, 'absent'), '--scores', path])).toContain(
      `${join(dir, 'absent', 'gsm8k.json')}: cannot read the processbench benchmark (ENOENT); ProcessBench is the Hugging Face dataset Qwen/ProcessBench`,
    );
    expect(await usageError(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', join(dir, 'absent.jsonl')])).toContain('cannot read the step scores (ENOENT)');
    expect(await usageError(['frobnicate'])).toContain('unknown subcommand "prm frobnicate"');
    expect(await usageError([])).toContain('missing subcommand');
  });
});

describe('prm-raft prm eval against a live PRM', () => {
  async function stubPrm(): Promise<{ server: StubServer; maxInFlight: () => number }> {
    const byId = new Map<string, number[]>(SUBSETS.flatMap((s) => (fixtures[s] ?? []).map((r) => [`${s}/${r.id}`, knownScores(s, r)] as const)));
    let inFlight = 0;
    let most = 0;
    const server = await startStubServer(async (_path, body) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight -= 1;
      const items = (body as { items: Array<{ id: string; steps: string[] }> }).items;
      return { status: 200, body: { model: 'stub-prm', scores: items.map((i) => ({ id: i.id, step_scores: byId.get(i.id) ?? i.steps.map(() => 0.5) })) } };
    });
    servers.push(server);
    return { server, maxInFlight: () => most };
  }

  async function config(url: string, prmSection = `prm: { model: stub-prm, baseUrls: [${url}], maxConcurrency: 2, maxRetries: 0 }`): Promise<string> {
    const path = join(dir, `config-${servers.length}.yaml`);
    await writeFile(
      path,
      `name: prm-eval-test
policy: { model: m, baseUrls: [http://127.0.0.1:9/v1] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: t, source: tinymath, path: data/tinymath/test.jsonl }] }
${prmSection}
`,
    );
    return path;
  }

  it('scores every record through the PRM client, two requests at a time, with progress on stderr, and saves the scores', async () => {
    const { server, maxInFlight } = await stubPrm();
    const saved = join(dir, 'saved.jsonl');
    const r = await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--config', await config(server.url), '--save-scores', saved, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(expectedAt(0.15));
    expect(r.stderr).toContain('scored 20/20 records');
    // One request per subset (five records each), the protocol's body, never more in flight than maxConcurrency.
    expect(server.requests).toHaveLength(4);
    const first = server.requests[0] as { path: string; body: { model: string; items: unknown[] } };
    expect([first.path, first.body.model, first.body.items.length]).toEqual(['/v1/score', 'stub-prm', 5]);
    const record = fixtures.gsm8k?.[0];
    expect(first.body.items[0]).toEqual({ id: `gsm8k/${record?.id}`, question: record?.problem, steps: record?.steps });
    expect(maxInFlight()).toBeLessThanOrEqual(2);
    // The saved scores are a --scores file that gives the same result.
    const again = await prm(['eval', '--benchmark', 'processbench', '--data', DATA, '--scores', saved, '--json']);
    expect(JSON.parse(again.stdout)).toEqual(expectedAt(0.15));
  });

  it('refuses a config without a prm section, an ORM, and passes on the server error', async () => {
    const { server } = await stubPrm();
    const args = (cfg: string) => ['eval', '--benchmark', 'processbench', '--data', DATA, '--config', cfg];
    expect(await usageError(args(await config(server.url, '')))).toContain('no prm section; add one (model, baseUrls) or pass --scores FILE.jsonl');
    expect(await usageError(args(await config(server.url, `prm: { model: o, baseUrls: [${server.url}], kind: orm }`)))).toContain('prm.kind is orm; prm eval needs one score per step');
    const failing = await startStubServer(() => ({ status: 400, body: { error: { message: 'model "stub-prm" is not served here' } } }));
    servers.push(failing);
    expect(await usageError(args(await config(failing.url)))).toContain('answered 400: model "stub-prm" is not served here');
  });
});
