// The campaign's table, state line and page, from a hand-made state.
import { describe, expect, it } from 'vitest';
import type { CampaignView } from '../../core/campaign.js';
import { campaignGrid, campaignPage, campaignStateLine } from '../../report/campaign.js';

const policy = (checkpoint: string) => ({ checkpoint, model: 'm' });
const row = (iteration: number, before: number, after: number) => ({
  iteration,
  workflowId: `c-iteration-${iteration}`,
  runDir: `/r/c-iteration-${iteration}`,
  policyBefore: `/p${iteration - 1}`,
  policyAfter: `/p${iteration}`,
  modelAfter: 'm',
  prompts: 100,
  learningRate: 0.0001,
  selectionPrecision: 0.5,
  sftLossFirst: 0.2,
  sftLossLast: 0.1,
  accuracy: [{ dataset: 'test', total: 400, before, after, changeStdErr: 0.01 }],
});
const view: CampaignView = {
  iterations: 2,
  initialPolicy: policy('/p0'),
  policy: policy('/p2'),
  cursor: 200,
  pool: [{ name: 'train', count: 1000 }],
  rows: [row(1, 0.4, 0.45), row(2, 0.45, 0.43)],
  initialAccuracy: 0.4,
  best: { iteration: 1, accuracy: 0.45, policy: policy('/p1') },
  status: 'waiting',
  triggers: 0,
  paused: false,
  lastError: null,
  stopReason: null,
  skippedTriggers: 0,
  name: 'c',
  maxIterations: 5,
  auto: false,
  promptsPerIteration: 100,
};

describe('the campaign report', () => {
  it('has the initial policy as iteration 0, then each iteration with its accuracy and paired change', () => {
    const grid = campaignGrid(view);
    expect(grid.columns.map((c) => c.label)).toEqual(['iteration', 'policy', 'prompts', 'learning rate', 'selection precision %', 'SFT loss', 'test %', 'test change']);
    expect(grid.rows.map((r) => [r[0], r[1], r[6], r[7]])).toEqual([
      ['0', '/p0', '40.0% ± 2.4', '—'],
      ['1', '/p1', '45.0% ± 2.5', '+5.0 ± 1.0 (5.0 SE, paired)'],
      ['2', '/p2', '43.0% ± 2.5', '-2.0 ± 1.0 (2.0 SE, paired)'],
    ]);
    expect(grid.rows[1]?.slice(2, 6)).toEqual(['100', '1.00e-4', '50.0', '0.200 → 0.100']);
  });

  it('says where the campaign stands: waiting with its best, or failed with the job error on one line', () => {
    expect(campaignStateLine(view)).toBe('waiting for `prm-raft campaign next` (2 of at most 5 iterations done; best so far: iteration 1 (45.0%))');
    const failed = { ...view, status: 'failed' as const, lastError: { iteration: 3, message: 'SFT job exited 1: Traceback\n  File "x"\nRuntimeError: boom\n' } };
    expect(campaignStateLine(failed).split('\n')[0]).toBe('iteration 3 failed: SFT job exited 1: Traceback … RuntimeError: boom');
  });

  it('renders a self-contained page with both plots', async () => {
    const html = await campaignPage(view);
    expect(html).toContain('<title>RAFT campaign: c</title>');
    expect(html.match(/<svg/g)).toHaveLength(2);
    expect(html).not.toMatch(/<script/);
  });
});
