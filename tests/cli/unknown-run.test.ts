// status and resume agree on a run that does not exist: bad input (exit 2) saying how to list the runs that do.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../cli/load-config.js';
import { resumeCommand } from '../../cli/resume.js';
import { statusCommand } from '../../cli/status.js';
import { timeSkippingEnv } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
let config: string;
beforeAll(async () => {
  env = await timeSkippingEnv();
  config = join(await mkdtemp(join(tmpdir(), 'prm-raft-unknown-run-')), 'c.yaml');
  await writeFile(
    config,
    `name: t
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: tiny, source: tinymath, path: unused }] }
temporal: { address: "${env.address}", namespace: default }
`,
  );
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

describe('a run that does not exist', () => {
  it.each([
    ['status', statusCommand],
    ['resume', resumeCommand],
  ])('%s refuses it as bad input, naming it and how to list runs', async (_name, command) => {
    const err = await command(['no-such-run', '--config', config]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe('no run "no-such-run" in namespace default; `prm-raft status` lists recent runs');
  });
});
