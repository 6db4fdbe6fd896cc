// bestOfNTables on hand-made samples and scores shards: known best-of-N numbers, the ORM's one table, refused
// problems, failed reward models, and the report files.
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bestOfNTables, type BestOfNTablesInput } from '../../activities/best-of-n-tables.js';
import type { SampledPrompt } from '../../activities/sample-shard.js';
import type { ScoredPrompt } from '../../activities/score-shard.js';
import { BestOfNResult, bestOfNTable, type ScoredResponse } from '../../core/best-of-n.js';
import type { SampleShardResult, ScoreShardResult } from '../../core/raft.js';
import { toJsonl } from '../../store/files.js';

/** Per problem, its responses as [extracted answer, correct, PRM step scores, ORM score list]. */
type Row = [string | null, boolean, number[], number[]];
const problems: Array<{ id: string; shard: number; rows: Row[]; error?: string }> = [
  // PRM (min) picks the right 8; the ORM picks a wrong 7; majority says 7; the PRM-weighted vote says 8.
  { id: 'p1', shard: 0, rows: [['7', false, [0.9, 0.2], [0.6]], ['8', true, [0.8, 0.7], [0.3]], ['7', false, [0.4], [0.5]], [null, false, [], []]] },
  // PRM picks the wrong 4; the ORM, majority and both weighted votes get the right 3.
  { id: 'p2', shard: 0, rows: [['3', true, [0.3, 0.4], [0.9]], ['4', false, [0.6, 0.5], [0.2]], ['3', true, [0.25], [0.8]], ['5', false, [0.1], [0.1]]] },
  // Nothing right to find.
  { id: 'p3', shard: 1, rows: [['11', false, [0.9], [0.9]], ['12', false, [0.8], [0.8]], ['11', false, [0.7], [0.7]], ['13', false, [0.6], [0.6]]] },
  // Refused by the policy server: no responses.
  { id: 'p4', shard: 1, rows: [], error: 'prompt longer than the context' },
];

let dir: string;
let input: BestOfNTablesInput;

/** The same responses as `prm-raft bon --scores` lines for one reward model. */
const scoresLines = (orm: boolean): ScoredResponse[] =>
  problems.flatMap((p) => p.rows.map(([answer, correct, prm, o]) => ({ problem_id: p.id, answer, correct, step_scores: orm ? o : prm })));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-bon-tables-'));
  const samples: SampleShardResult[] = [];
  const scores: Record<'prm' | 'orm', ScoreShardResult[]> = { prm: [], orm: [] };
  for (const shard of [0, 1]) {
    const mine = problems.filter((p) => p.shard === shard);
    const lines: SampledPrompt[] = mine.map((p) => ({
      id: p.id,
      question: `question ${p.id}`,
      reference: '?',
      answerKind: 'tinymath',
      responses: p.rows.map(([extracted, correct], index) => ({ index, text: `steps of ${p.id}/${index}`, finishReason: 'stop', extracted, correct })),
      ...(p.error ? { error: p.error } : {}),
    }));
    const uri = join(dir, `samples-${shard}.jsonl`);
    await writeFile(uri, toJsonl(lines));
    const responses = mine.reduce((n, p) => n + p.rows.length, 0);
    samples.push({ uri, count: mine.length, sha256: 's', dataset: 'test', shard, prompts: mine.length, responses, truncated: 0, refused: mine.filter((p) => p.error).length, correct: 2, cached: false });
    for (const kind of ['prm', 'orm'] as const) {
      const scored: ScoredPrompt[] = mine.map((p) => ({ id: p.id, stepScores: p.rows.map((r) => (kind === 'orm' ? r[3] : r[2])) }));
      const path = join(dir, `${kind}-${shard}.jsonl`);
      await writeFile(path, toJsonl(scored));
      scores[kind].push({ uri: path, count: mine.length, sha256: 'p', dataset: 'test', shard, scored: responses, empty: 1, cached: false });
    }
  }
  input = {
    name: 'tiny best-of-N',
    runDir: join(dir, 'run'),
    samplesPerProblem: 4,
    tables: { ns: [1, 2, 4], draws: 5, seed: 3, aggregations: ['min', 'last'] },
    samples,
    rewardModels: [
      { name: 'prm', kind: 'prm', scores: scores.prm },
      { name: 'orm', kind: 'orm', scores: scores.orm },
    ],
    failed: [{ name: 'broken', kind: 'prm', error: 'PRM server answered 400: item too long' }],
  };
});

describe('bestOfNTables', () => {
  it('gives the known numbers at the full pool, and the same tables as bon --scores on the same responses', async () => {
    const result = await bestOfNTables(input);
    const [prm, orm] = result.report.rewardModels;
    expect(prm?.tables.map((t) => t.aggregate)).toEqual(['min', 'last']);
    // Every aggregation gives an ORM's single score back: one table.
    expect(orm?.tables.map((t) => t.aggregate)).toEqual(['min']);

    const full = (t: { results: Array<{ n: number }> } | undefined) => t?.results.find((r) => r.n === 4);
    expect(full(prm?.tables[0])).toEqual({ n: 4, best_of_n: 1 / 3, majority: 1 / 3, weighted: 2 / 3, pass_at_n: 2 / 3, spread: 0, problems_short: 0 });
    expect(full(orm?.tables[0])).toEqual({ n: 4, best_of_n: 1 / 3, majority: 1 / 3, weighted: 1 / 3, pass_at_n: 2 / 3, spread: 0, problems_short: 0 });

    const refusedNote = '1 of 4 problems were refused by the policy server and are left out';
    const expected = (orm: boolean, aggregate: 'min' | 'last') => {
      const t = bestOfNTable(scoresLines(orm), { ns: [1, 2, 4], draws: 5, seed: 3, aggregate });
      return { ...t, notes: [...t.notes, refusedNote] };
    };
    expect(prm?.tables).toEqual([expected(false, 'min'), expected(false, 'last')]);
    expect(orm?.tables).toEqual([expected(true, 'min')]);
    expect(prm?.tables[0]?.problems).toBe(3);

    expect(result.report).toMatchObject({ name: 'tiny best-of-N', problems: 4, samplesPerProblem: 4, failed: input.failed });
    expect(result.sampling).toEqual({ prompts: 4, responses: 12, truncated: 0, refused: 1, correct: 4 });
  });

  it('writes summary.json, the HTML report and the Markdown tables into the run folder', async () => {
    const result = await bestOfNTables(input);
    expect(result.files).toEqual({ summary: join(input.runDir, 'summary.json'), html: join(input.runDir, 'report.html'), markdown: join(input.runDir, 'table.md') });
    expect(BestOfNResult.parse(JSON.parse(await readFile(result.files.summary, 'utf8')))).toEqual(result);
    const html = await readFile(result.files.html, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('tiny best-of-N');
    const markdown = await readFile(result.files.markdown, 'utf8');
    for (const heading of ['### prm (PRM, min of step scores', '### prm (PRM, last of step scores', '### orm (ORM, one score per response']) expect(markdown).toContain(heading);
    expect(markdown).toContain('| 4 | 33.3 ± 0.0 | 33.3 | 66.7 | 66.7 |');
  });

  it('refuses, without retrying, scores that do not belong to the samples', async () => {
    // Scores of other samples: p1 had three responses there.
    const other = join(dir, 'other-scores.jsonl');
    await writeFile(other, toJsonl([{ id: 'p1', stepScores: [[0.5], [0.5], [0.5]] }, { id: 'p2', stepScores: [[0.5], [0.5], [0.5], [0.5]] }]));
    const [first, second] = input.rewardModels[0]!.scores;
    const mismatched = { ...input, rewardModels: [{ name: 'prm', kind: 'prm' as const, scores: [{ ...first!, uri: other }, second!] }] };
    const error = await bestOfNTables(mismatched).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect((error as ApplicationFailure).nonRetryable).toBe(true);
    expect((error as ApplicationFailure).message).toBe('prompt "p1" has 4 responses but 3 score lists: the scores do not belong to these samples');
  });
});
