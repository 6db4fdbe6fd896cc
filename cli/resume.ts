// prm-raft resume RUN — start a failed run again under its own id; finished stages are found on disk and skipped.
import { defaultPayloadConverter } from '@temporalio/common';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { follow, startAndFollow } from './run-workflow.js';
import { describeRun } from './status.js';

const USAGE = 'prm-raft resume RUN [--config FILE] [--json] [--detach]';

export async function resumeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string', default: DEFAULT_CONFIG }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  const [workflowId, ...extra] = positionals;
  if (!workflowId || extra.length > 0) throw new UsageError(`usage: ${USAGE}`);
  const config = await loadConfig(values.config);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  const description = await describeRun(client, workflowId);
  const handle = client.workflow.getHandle(workflowId);
  const status = description.status.name;
  if (status === 'RUNNING') {
    process.stderr.write(`${workflowId} is still running; following it\n`);
    return follow(client, workflowId, values.json);
  }
  if (status === 'COMPLETED') {
    process.stderr.write(`${workflowId} already finished\n`);
    return follow(client, workflowId, values.json);
  }
  const history = await handle.fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const payload = started?.input?.payloads?.[0];
  if (!payload || !started?.taskQueue?.name) throw new Error(`cannot read the input of ${workflowId} from its history`);
  process.stderr.write(`${workflowId} ended ${status}; starting it again — stages whose outputs exist are skipped\n`);
  return startAndFollow(
    client,
    { type: description.type, workflowId, taskQueue: started.taskQueue.name, input: defaultPayloadConverter.fromPayload(payload) },
    { json: values.json, detach: values.detach },
  );
}
