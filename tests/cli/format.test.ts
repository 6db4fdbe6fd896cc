// What `prm-raft eval` and `prm-raft iterate` print: accuracies with their standard errors, changes against their
// noise, and the selection's right picks against the baselines on the same samples.
import { describe, expect, it } from 'vitest';
import { formatAccuracyTable, formatIteration } from '../../cli/report.js';
import { combineShards, REFUSED_GROUP, tallyResults } from '../../core/evaluation.js';
import type { DatasetAccuracy, EvalResultRecord, EvalShardResult, EvaluationSummary } from '../../core/manifests.js';
import type { RaftIterationResult } from '../../core/raft.js';

const accuracy = (dataset: string, correct: number, total: number, groups: DatasetAccuracy['groups'] = {}): DatasetAccuracy => ({
  dataset,
  source: 'tinymath',
  total,
  correct,
  accuracy: correct / total,
  truncated: 0,
  groups,
  results: { uri: `/r/${dataset}`, count: total, sha256: 'x' },
});
const summary = (policy: string, datasets: DatasetAccuracy[]): EvaluationSummary => ({ runDir: `/runs/${policy}`, policy, datasets, shardsCached: 0, shardsRun: 1 });

const result = (selection: Partial<RaftIterationResult['selection']> = {}): RaftIterationResult => ({
  runDir: '/runs/raft-1',
  policyBefore: '/ckpt/base',
  policyAfter: '/ckpt/new',
  sampling: { prompts: 200, responses: 3200, truncated: 0, refused: 0, correct: 996 },
  selection: {
    mode: 'prm',
    prompts: 200,
    kept: 200,
    scored: 200,
    scoreSum: 71.4,
    minSelectedScore: 0.267,
    meanSelectedScore: 0.357,
    selectedCorrect: 37,
    promptsWithACorrectResponse: 146,
    randomExpectedCorrect: 61.7,
    majorityCorrect: 56,
    rejected: {},
    ...selection,
  },
  selected: { uri: '/selected.jsonl', count: 200, sha256: 'x' },
  sft: { checkpoint: '/ckpt/new', steps: 26, lossFirst: 0.118, lossLast: 0.106, perDeviceBatchSize: 16, gradientAccumulationSteps: 1, cached: false },
  // 206/500 → 174/500 (20 questions gained, 52 lost): −6.4 points; 50/100 → 53/100 (9 gained, 6 lost): +3.0 points.
  before: summary('base', [accuracy('tinymath-test', 206, 500), accuracy('small', 50, 100)]),
  after: summary('new', [accuracy('tinymath-test', 174, 500), accuracy('small', 53, 100)]),
  change: [
    { dataset: 'tinymath-test', total: 500, gained: 20, lost: 52 },
    { dataset: 'small', total: 100, gained: 9, lost: 6 },
  ],
});

const line = (text: string, start: string) => text.split('\n').find((l) => l.startsWith(start));

describe('formatIteration', () => {
  it('prints every accuracy with its standard error, and each change with its paired one, how many it is, and the questions gained and lost', () => {
    const text = formatIteration(result());
    // SE: √(.412·.588/500) = 2.2, √(.348·.652/500) = 2.1; the change's paired SE √((72/500 − .064²)/500) = 1.7,
    // where the independent-samples √(2.2² + 2.1²) = 3.1 would have put it at 2.1 SE.
    expect(line(text, 'tinymath-test')).toMatch(/^tinymath-test +41\.2% ± 2\.2 \(206\/500\) +34\.8% ± 2\.1 \(174\/500\) +-6\.4 ± 1\.7 \(3\.8 SE, paired\); gained 20, lost 52$/);
    // √((15/100 − .03²)/100) = 3.9: still noise.
    expect(line(text, 'small')).toMatch(/^small +50\.0% ± 5\.0 \(50\/100\) +53\.0% ± 5\.0 \(53\/100\) +\+3\.0 ± 3\.9 \(0\.8 SE, paired\) \(within 2 SE: noise\); gained 9, lost 6$/);
  });

  it("says how many of an evaluation's questions the policy server refused", () => {
    const refused = { [REFUSED_GROUP]: { total: 3, correct: 0, accuracy: 0 } };
    const r = { ...result(), after: summary('new', [accuracy('tinymath-test', 174, 500, refused), accuracy('small', 53, 100)]) };
    expect(line(formatIteration(r), 'tinymath-test')).toMatch(/ \(206\/500\) +34\.8% ± 2\.1 \(174\/500, 3 refused\) /);
    expect(line(formatIteration(r), 'small')).not.toContain('refused');
  });

  it('prints a bare change for a result written before the evaluations were paired', () => {
    const { change: _c, ...old } = result();
    const text = formatIteration(old as RaftIterationResult);
    expect(line(text, 'tinymath-test')).toMatch(/ \(174\/500\) +-6\.4$/);
    expect(text).not.toContain('SE,');
  });

  it("shows a reward model's right picks against the baselines, and its share of the prompts it could get right", () => {
    expect(line(formatIteration(result()), 'selected')).toBe(
      'selected  200/200 prompts kept a response (selection.mode prm); selected score mean 0.357, min 0.267; ' +
        'right picks: prm 37 · random 61.7 (expected) · majority 56 · oracle 146 (prompts with a right response); ' +
        'prm right on 25.3% of the 146 prompts with a right response',
    );
  });

  it('says how many responses the PRM refused to score', () => {
    expect(line(formatIteration(result({ unscored: 4, rejected: { 'no-score': 4 } })), 'selected')).toMatch(
      /right picks: .*; 4 responses unscored \(refused by the PRM, never selected\); rejected: no-score 4$/,
    );
    expect(line(formatIteration(result()), 'selected')).not.toContain('unscored');
  });

  it("puts a baseline mode's own count first, without scores, and says why responses were rejected", () => {
    const majority = result({ mode: 'majority', scored: 0, scoreSum: 0, minSelectedScore: null, meanSelectedScore: null, selectedCorrect: 56, kept: 190, rejected: { truncated: 12 } });
    expect(line(formatIteration(majority), 'selected')).toBe(
      'selected  190/200 prompts kept a response (selection.mode majority); ' +
        'right picks: majority 56 · random 61.7 (expected) · oracle 146 (prompts with a right response); rejected: truncated 12',
    );
    const random = result({ mode: 'random', scored: 0, minSelectedScore: null, meanSelectedScore: null, selectedCorrect: 60 });
    expect(line(formatIteration(random), 'selected')).toContain('right picks: random 60 · random 61.7 (expected) · majority 56 · oracle 146');
  });
});

describe('formatAccuracyTable', () => {
  it('prints the standard error beside each accuracy, groups included', () => {
    const text = formatAccuracyTable(summary('base', [accuracy('math', 40, 160, { 'level 1': { total: 10, correct: 9, accuracy: 0.9 } })]));
    // √(.25·.75/160) = 3.4; √(.9·.1/10) = 9.5.
    expect(line(text, 'math')).toMatch(/^math +160 +40 +25\.0% ± 3\.4 +0 +0$/);
    expect(line(text, '  level 1')).toMatch(/^ {2}level 1 +10 +9 +90\.0% ± 9\.5 *$/);
  });

  it('counts the questions the policy server refused, across shards, as wrong answers it names apart', () => {
    const record = (id: string, finishReason: string, correct: boolean): EvalResultRecord => ({
      id,
      question: 'q',
      reference: '1',
      prediction: correct ? '1' : '',
      finishReason,
      extracted: correct ? '1' : null,
      correct,
      level: 1,
    });
    // What evaluateShard writes for a refused prompt: no prediction, finishReason "refused", wrong.
    const shard = (records: EvalResultRecord[], index: number): EvalShardResult => ({
      uri: `/s/${index}`, count: records.length, sha256: 'x', dataset: 'math', shard: index, cached: false, ...tallyResults(records),
    });
    const combined = combineShards([
      shard([record('a', 'stop', true), record('b', 'refused', false), record('c', 'length', false)], 0),
      shard([record('d', 'refused', false), record('e', 'stop', false)], 1),
    ]);
    const text = formatAccuracyTable(summary('base', [{ dataset: 'math', source: 'math', ...combined, results: { uri: '/r', count: 5, sha256: 'x' } }]));
    expect(line(text, 'dataset')).toMatch(/ refused$/);
    expect(line(text, 'math')).toMatch(/^math +5 +1 +20\.0% ± 17\.9 +1 +2$/);
    expect(text).not.toContain(REFUSED_GROUP);
    expect(line(text, '  level:1')).toMatch(/^ {2}level:1 +5 +1 +20\.0% ± 17\.9 *$/);
  });
});
