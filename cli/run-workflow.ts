// Starting a workflow from the command line and following it: shared by eval, iterate and resume.
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { formatResult } from './report.js';
import { watchRun } from './watch.js';

export function newWorkflowId(kind: string, name: string): string {
  return `${kind}-${name}-${new Date().toISOString().replace(/[-:T.Z]/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`;
}

export interface FollowOptions {
  json: boolean;
  detach: boolean;
}

export async function startAndFollow(
  client: Client,
  start: { type: string; workflowId: string; taskQueue: string; input: unknown },
  opts: FollowOptions,
): Promise<number> {
  await client.workflow.start(start.type, { taskQueue: start.taskQueue, workflowId: start.workflowId, args: [start.input] });
  process.stderr.write(`started ${start.type} ${start.workflowId}\n`);
  if (opts.detach) {
    process.stdout.write(`${start.workflowId}\n`);
    return 0;
  }
  return follow(client, start.workflowId, opts.json);
}

export async function follow(client: Client, workflowId: string, json: boolean): Promise<number> {
  const outcome = await watchRun(client, workflowId);
  if (outcome.kind === 'detached') return 0;
  process.stdout.write(json ? `${JSON.stringify(outcome.result, null, 2)}\n` : formatResult(outcome.type, outcome.result));
  return 0;
}
