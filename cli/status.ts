// prm-raft status [WORKFLOW_ID] — reattach to a run, report how it ended, or list recent runs.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { formatResult } from './report.js';
import { watchRun } from './watch.js';

const USAGE = 'prm-raft status [WORKFLOW_ID] [--config FILE] [--json]';

export async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { config: { type: 'string', default: DEFAULT_CONFIG }, json: { type: 'boolean', default: false } }, USAGE);
  const config = await loadConfig(values.config);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  const [workflowId] = positionals;
  if (workflowId === undefined) {
    let shown = 0;
    for await (const wf of client.workflow.list({ pageSize: 100 })) {
      // The runs users started: a comparison's dozen children would push every other run off the list.
      if (wf.parentExecution) continue;
      process.stdout.write(`${wf.workflowId}  ${wf.type}  ${wf.status.name}  ${wf.startTime.toISOString()}\n`);
      if (++shown >= 20) break;
    }
    if (shown === 0) process.stdout.write('no runs yet\n');
    return 0;
  }
  await describeRun(client, workflowId);
  const outcome = await watchRun(client, workflowId);
  if (outcome.kind === 'detached') return 0;
  process.stdout.write(values.json ? `${JSON.stringify(outcome.result, null, 2)}\n` : formatResult(outcome.type, outcome.result));
  return 0;
}

/** A run by id; one that does not exist is bad input (exit 2), with how to list the runs that do. */
export async function describeRun(client: Client, workflowId: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    throw new UsageError(`no run "${workflowId}" in namespace ${client.options.namespace}; \`prm-raft status\` lists recent runs`);
  }
}
