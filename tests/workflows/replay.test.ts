// Replays a recorded evaluatePolicy history against today's workflow code: a non-deterministic change fails here.
import { Worker } from '@temporalio/worker';
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { HISTORY_FIXTURE, workflowBundle } from '../helpers/temporal.js';

it('replays the recorded evaluatePolicy history without nondeterminism', async () => {
  const history: unknown = JSON.parse(await readFile(HISTORY_FIXTURE, 'utf8'));
  await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'order')).resolves.toBeUndefined();
});
