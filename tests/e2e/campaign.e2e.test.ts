// A RAFT campaign end to end, for real: the Temporal dev server, a worker and the CPU policy server from
// `prm-raft dev up`, driven through the CLI — a Schedule triggers iteration 1, a broken SFT stage fails iteration 2
// until its retries run out, and after the fix the next trigger finishes iteration 2 without sampling again.
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignView } from '../../core/campaign.js';
import { makeStack, ROOT, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let broken: string;
beforeAll(async () => {
  stack = await makeStack(
    () => `
sampling:
  n: 4
  maxTokens: 100
  shardSize: 4
  datasets: [{ name: tinymath-train, source: tinymath, path: ${join(ROOT, 'data/tinymath/train.jsonl')}, skip: 100, limit: 16 }]
selection: { mode: oracle, dropNoAnswer: false, dropTruncated: false }
sft: { maxSteps: 2, perDeviceBatchSize: 4, saveSteps: 1, learningRate: 0.0005, maxLength: 384, maxAttempts: 2 }
campaign: { promptsPerIteration: 8, maxIterations: 2 }
`,
  );
  broken = join(stack.dir, 'sft-broken');
  // The SFT job crashes at its first step while this file exists: the test breaks and fixes the stage with it.
  const up = await stack.cli(['dev', 'up', '--config', stack.config], { PRM_RAFT_SFT_FAULT: `crash@1:while=${broken}` });
  expect(up.exitCode, up.stderr).toBe(0);
}, 300_000);
afterAll(async () => {
  await stack?.cli(['campaign', 'unschedule', 'camp', '--config', stack.config]);
  await stack?.cli(['dev', 'down', '--config', stack.config]);
}, 120_000);

async function status(): Promise<CampaignView> {
  const r = await stack.cli(['campaign', 'status', 'camp', '--config', stack.config, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return CampaignView.parse(JSON.parse(r.stdout));
}

/** Polls the campaign until `ok` holds, failing with the last state after `seconds`. */
async function until(ok: (v: CampaignView) => boolean, seconds: number): Promise<CampaignView> {
  const deadline = Date.now() + seconds * 1000;
  let last = await status();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`the campaign did not get there in ${seconds} s; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 2000));
    last = await status();
  }
  return last;
}

async function sampleShards(): Promise<Array<[string, number]>> {
  const dir = join(stack.dir, 'runs', 'cache', 'samples');
  const keys = (await readdir(dir)).sort();
  return Promise.all(keys.map(async (k) => [k, (await stat(join(dir, k, 'result.json'))).mtimeMs] as [string, number]));
}

describe('a RAFT campaign on the embedded stack', () => {
  it('runs an iteration a Schedule triggers, then resumes a failed iteration 2 from its finished stages', async () => {
    const started = await stack.cli(['campaign', 'start', '--config', stack.config, '--id', 'camp']);
    expect(started.exitCode, started.stderr).toBe(0);
    expect(started.stdout.trim()).toBe('camp');
    expect((await status()).status).toBe('waiting');

    // Every 2 s; the iteration takes far longer, so the triggers that come meanwhile are skipped.
    const scheduled = await stack.cli(['campaign', 'schedule', 'camp', '--every', '2s', '--config', stack.config]);
    expect(scheduled.exitCode, scheduled.stderr).toBe(0);
    await until((v) => v.status === 'running' && v.skippedTriggers > 0, 300);
    // Removed while iteration 1 runs, so no trigger is left to start iteration 2.
    const removed = await stack.cli(['campaign', 'unschedule', 'camp', '--config', stack.config]);
    expect(removed.exitCode, removed.stderr).toBe(0);
    const first = await until((v) => v.iterations === 1, 600);
    expect(first.status).toBe('waiting');
    expect(first.rows[0]).toMatchObject({ iteration: 1, prompts: 8, policyBefore: join(ROOT, 'models/tinymath-policy') });
    expect(first.policy.checkpoint).toBe(first.rows[0]?.policyAfter);

    // Iteration 2 with a broken SFT stage: while it runs, another `next` is refused with the reason.
    await writeFile(broken, '');
    const next = await stack.cli(['campaign', 'next', 'camp', '--config', stack.config]);
    expect(next.exitCode, next.stderr).toBe(0);
    expect(next.stderr).toContain('camp: iteration 2 triggered');
    await until((v) => v.status === 'running', 60);
    const refused = await stack.cli(['campaign', 'next', 'camp', '--config', stack.config]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('next rejected: iteration 2 is running; trigger the next one when it has finished');

    const failed = await until((v) => v.status === 'failed', 600);
    expect(failed.iterations).toBe(1);
    expect(failed.lastError?.iteration).toBe(2);
    expect(failed.lastError?.message).toMatch(/fake crash/);
    const table = await stack.cli(['campaign', 'status', 'camp', '--config', stack.config]);
    expect(table.stdout).toMatch(/iteration 2 failed: SFT job exited 1.* … RuntimeError: fake crash \(PRM_RAFT_SFT_FAULT test hook, step 1\)\n/);
    const sampled = await sampleShards();
    // Two shards of 4 prompts per iteration.
    expect(sampled).toHaveLength(4);

    // Fixed: the next trigger runs iteration 2 again from its cached samples, and the campaign ends at maxIterations.
    await rm(broken);
    const resumed = await stack.cli(['campaign', 'next', 'camp', '--config', stack.config, '--wait']);
    expect(resumed.exitCode, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain('stopped: reached maxIterations (2)');
    expect(await sampleShards()).toEqual(sampled);
    const done = await status();
    expect(done.rows.map((r) => [r.iteration, r.workflowId, r.prompts])).toEqual([
      [1, 'camp-iteration-1', 8],
      [2, 'camp-iteration-2', 8],
    ]);
    expect(done.rows[1]?.policyBefore).toBe(done.rows[0]?.policyAfter);

    // A stopped campaign takes no more triggers, and its report is rebuilt from its folder.
    const after = await stack.cli(['campaign', 'next', 'camp', '--config', stack.config]);
    expect(after.exitCode).toBe(1);
    expect(after.stderr).toMatch(/camp (has finished|.*stopped)/);
    const report = await stack.cli(['report', 'camp', '--config', stack.config]);
    expect(report.exitCode, report.stderr).toBe(0);
    expect(await readFile(report.stdout.trim(), 'utf8')).toContain('RAFT campaign: e2e');
  }, 1_500_000);
});
