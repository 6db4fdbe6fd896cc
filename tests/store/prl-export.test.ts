// PRL labels of a labeling run's solutions on a tiny hand-made run (one token per character): the export (jsonl raw,
// math-shepherd clipped), the agreement pairs against ER(η) on the same steps, and the label commands' flags.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { labelCommand } from '../../cli/label.js';
import { UsageError } from '../../cli/load-config.js';
import type { LabeledSolution, LabelRunSummary } from '../../core/labeling.js';
import { erLabel } from '../../core/labels.js';
import { agreementTable } from '../../core/prl-agreement.js';
import type { LogprobShardResult } from '../../core/prl.js';
import { exportPrlLabels, prlAgreementSolutions, type PrlRunJob } from '../../store/prl-export.js';
import { sha256, toJsonl } from '../../store/files.js';

const solution = (index: number, text: string, correct: boolean, counts: Array<{ k: number; m: number }>, error?: string): LabeledSolution => ({
  id: `p1/${index}`,
  problemId: 'p1',
  question: 'What is 1+1?',
  reference: '2',
  answerKind: 'tinymath',
  solution: text,
  finishReason: 'stop',
  correct,
  steps: error ? [] : text.split('\n'),
  counts: error ? [] : counts,
  ...(error ? { error } : {}),
});
const solutions = [
  solution(0, '1+1=2\n#### 2', true, [{ k: 3, m: 4 }, { k: 1, m: 1 }]),
  solution(1, '1+1=3\n#### 3', false, [{ k: 1, m: 4 }, { k: 0, m: 1 }]),
  solution(2, 'x', false, [], 'a prefix was refused'),
];

let dir: string;
let job: PrlRunJob;

async function file(name: string, lines: unknown[]): Promise<{ uri: string; count: number; sha256: string }> {
  const text = toJsonl(lines);
  const uri = join(dir, name);
  await writeFile(uri, text);
  return { uri, count: lines.length, sha256: sha256(text) };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-prl-export-'));
  const shard = { ...(await file('labels.jsonl', solutions)), dataset: 'train', shard: 0, start: 0, end: 1, problems: 1, solutions: 3, correctSolutions: 1, steps: 4, completions: 8, incomplete: 1, cached: false };
  const summary: LabelRunSummary = { kind: 'labels', runDir: dir, generator: 'g', completer: 'g', shards: [shard], problems: 1, solutions: 3, correctSolutions: 1, steps: 4, completions: 8, incomplete: 1 };
  const lines = (lp: (i: number) => number) => solutions.map((s, i) => ({ id: s.id, logprobs: [...s.solution].map(() => lp(i)), char_ends: [...s.solution].map((_, t) => t + 1) }));
  const manifest = async (name: string, lp: (i: number) => number): Promise<LogprobShardResult> => ({ ...(await file(name, lines(lp))), dataset: 'train', shard: 0, checkpoint: `/${name}`, responses: 3, tokens: 24, cached: false });
  // π gives solution 0's tokens −0.5 where π0 gives −1 (a log-ratio of +0.5 per token); solution 1 is unchanged.
  const current = await manifest('pi.jsonl', (i) => (i === 0 ? -0.5 : -1));
  const initial = await manifest('pi0.jsonl', () => -1);
  job = { summary, logprobs: [{ current, initial }], steps: { by: 'newline' }, eta: 2, boundary: 'after-step' };
});

const read = async (uri: string) => (await readFile(uri, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('PRL labels of a labeling run', () => {
  it('exports raw values as jsonl: r − (1/η)·(log-ratio after the step), the last step exactly r', async () => {
    const stats = await exportPrlLabels({ ...job, format: 'jsonl', out: join(dir, 'prl.jsonl') });
    // Solution 0: step 1 ends after "1+1=2\n" (6 tokens); the 6 tokens after it carry 6 × 0.5 = 3: 1 − 3/2 = −0.5.
    expect(await read(stats.out)).toEqual([
      { id: 'p1/0', question: 'What is 1+1?', steps: ['1+1=2', '#### 2'], labels: [-0.5, 1], correct: true, eta: 2, boundary: 'after-step', sequence: 1 - 6 / 2, logRatio: 6 },
      { id: 'p1/1', question: 'What is 1+1?', steps: ['1+1=3', '#### 3'], labels: [0, 0], correct: false, eta: 2, boundary: 'after-step', sequence: 0, logRatio: 0 },
    ]);
    expect(stats).toMatchObject({ solutions: 2, steps: 4, skipped: 1, meanLabel: 0.5 / 4, minLabel: -0.5, maxLabel: 1, clipped: 0 });
    // The authors' boundary reads the value one token earlier: the step's own last token's log-ratio counts too.
    const early = await exportPrlLabels({ ...job, boundary: 'from-step-end-token', format: 'jsonl', out: join(dir, 'prl-early.jsonl') });
    expect((await read(early.out))[0]?.labels).toEqual([1 - 3.5 / 2, 1 - 0.5 / 2]);
  });

  it('clips to [0, 1] for math-shepherd and counts what it clipped', async () => {
    const stats = await exportPrlLabels({ ...job, format: 'math-shepherd', out: join(dir, 'prl.ms.jsonl') });
    const [first] = await read(stats.out);
    expect(first).toEqual({ id: 'p1/0', input: 'What is 1+1? 1+1=2 ки\n#### 2 ки', label: 'What is 1+1? 1+1=2 -\n#### 2 +', value: [0, 1] });
    expect(stats.clipped).toBe(1);
  });

  it('pairs PRL with ER(η) on the same steps for the agreement table, and refuses steps the run did not use', async () => {
    const pairs = await prlAgreementSolutions(job);
    expect(pairs).toEqual([
      { id: 'p1/0', prl: [-0.5, 1], er: [erLabel(3, 4, 2), erLabel(1, 1, 2)] },
      { id: 'p1/1', prl: [0, 0], er: [erLabel(1, 4, 2), erLabel(0, 1, 2)] },
    ]);
    const table = agreementTable(pairs);
    expect(table.rows.map((r) => [r.position, r.n])).toEqual([['1', 2], ['all', 2]]);
    expect(table.overall.meanAbsDiff).toBeCloseTo((Math.abs(-0.5 - erLabel(3, 4, 2)) + Math.abs(0 - erLabel(1, 4, 2))) / 2, 12);
    await expect(prlAgreementSolutions({ ...job, steps: { by: 'regex', pattern: '=' } })).rejects.toThrow(/the config's steps .* cut it into 2 steps, the labeling run into 2, first different at step 1: give the config the labeling run used/);
    // π0 = π (no second file): every value is the outcome.
    const same = await prlAgreementSolutions({ ...job, logprobs: [{ current: job.logprobs[0]!.initial!, initial: null }] });
    expect(same.map((p) => p.prl)).toEqual([[1, 1], [0, 0]]);
  });

  it('label export --kind prl and label agreement refuse missing or bad flags before anything starts', async () => {
    const usage = (args: string[]) => labelCommand(args).then(() => null, (e: unknown) => (e instanceof UsageError ? e.message : e));
    expect(await usage(['export', '--run', dir, '--kind', 'prl', '--format', 'jsonl', '--eta', '2'])).toMatch(/need --policy CKPT \(π\) and --initial-policy CKPT \(π0\)/);
    expect(await usage(['export', '--run', dir, '--kind', 'prl', '--format', 'csv'])).toMatch(/--format: expected math-shepherd or jsonl/);
    expect(await usage(['agreement', '--run', dir, '--policy', '/a', '--initial-policy', '/b', '--eta', '-1'])).toMatch(/--eta: PRL's η must be > 0/);
    expect(await usage(['agreement', '--run', dir, '--policy', '/a', '--initial-policy', '/b', '--eta', '2', '--boundary', 'middle'])).toMatch(/--boundary: expected after-step or from-step-end-token/);
    expect(await usage(['export', '--run', dir, '--kind', 'prm', '--format', 'jsonl'])).toMatch(/--kind: expected hard, soft, er or prl/);
  });
});
