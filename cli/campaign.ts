// prm-raft campaign — a series of RAFT iterations as one durable object: start it, trigger, pause, stop, schedule.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { campaignInputFromConfig, CampaignView, type RaftCampaignInput } from '../core/campaign.js';
import type { Config } from '../core/config.js';
import { campaignMarkdown } from '../report/campaign.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { nextIterationUpdate, pauseSignal, resumeSignal, stopSignal } from '../workflows/raft-campaign.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { iterationDatasets } from './iterate.js';
import { loadConfig, UsageError } from './load-config.js';
import { preflightDatasets } from './preflight.js';
import { isDirectory, newWorkflowId } from './run-workflow.js';
import { describeRun } from './status.js';
import { failureChain, watchRun } from './watch.js';

const USAGE = `prm-raft campaign start --config F [--id ID] [--policy CHECKPOINT_DIR] [--auto]
prm-raft campaign next ID [--config F] [--wait]     run the next iteration (starts the campaign when ID is new)
prm-raft campaign status ID [--config F] [--wait] [--json]
prm-raft campaign pause|resume ID [--config F]
prm-raft campaign stop ID [--config F] [--finish-iteration]
prm-raft campaign schedule ID --every DURATION [--config F]   (DURATION: 30m, 6h, 1d)
prm-raft campaign unschedule ID [--config F]`;

/** Campaign ids become run folders: the same safe pattern as config names. */
const SAFE_ID = /^[a-z0-9][a-z0-9._-]*$/;

export async function campaignCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`usage:\n${USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parseFlags(
    rest,
    {
      config: { type: 'string', default: DEFAULT_CONFIG },
      id: { type: 'string' },
      policy: { type: 'string' },
      auto: { type: 'boolean', default: false },
      wait: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'finish-iteration': { type: 'boolean', default: false },
      every: { type: 'string' },
    },
    USAGE,
  );
  if (sub === 'start') {
    if (positionals.length > 0) throw new UsageError(`usage: ${USAGE}`);
    return startCampaign(values.config, { id: values.id, policy: values.policy, auto: values.auto });
  }
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0 || !['next', 'status', 'pause', 'resume', 'stop', 'schedule', 'unschedule'].includes(sub ?? '')) {
    throw new UsageError(`usage:\n${USAGE}`);
  }
  checkId(id);
  const config = await loadConfig(values.config);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  switch (sub) {
    case 'next':
      return triggerNext(client, config, id, values.wait);
    case 'status':
      return showStatus(client, id, values.wait, values.json);
    case 'pause':
    case 'resume':
      await describeRun(client, id);
      await client.workflow.getHandle(id).signal(sub === 'pause' ? pauseSignal : resumeSignal);
      process.stderr.write(sub === 'pause' ? `${id}: paused; the running iteration, if any, finishes first\n` : `${id}: resumed\n`);
      return 0;
    case 'stop': {
      await describeRun(client, id);
      const finishIteration = values['finish-iteration'];
      await client.workflow.getHandle(id).signal(stopSignal, { finishIteration });
      process.stderr.write(`${id}: stopping${finishIteration ? ' after the running iteration' : '; a running iteration is cancelled, its SFT job and servers stopped'}\n`);
      return 0;
    }
    case 'schedule':
      return schedule(client, config, id, values.every);
    default:
      return unschedule(client, id);
  }
}

function checkId(id: string): void {
  if (!SAFE_ID.test(id)) throw new UsageError(`campaign id "${id}": expected lowercase letters, digits, ".", "_" or "-" (it names the run's folder)`);
}

/** The campaign's input from the config: what the config lacks, or a dataset it cannot read, is a usage error. */
async function campaignInput(config: Config, policy: string | undefined, auto: boolean): Promise<RaftCampaignInput> {
  if (policy !== undefined && !(await isDirectory(policy))) throw new UsageError(`--policy: ${policy} is not a checkpoint directory`);
  let input: RaftCampaignInput;
  try {
    input = campaignInputFromConfig(config, policy, auto);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  await preflightDatasets(iterationDatasets(input.iteration));
  return input;
}

async function startCampaign(configPath: string, opts: { id?: string; policy?: string; auto: boolean }): Promise<number> {
  const config = await loadConfig(configPath);
  if (opts.id !== undefined) checkId(opts.id);
  const input = await campaignInput(config, opts.policy, opts.auto);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  const workflowId = opts.id ?? newWorkflowId('campaign', config.name);
  try {
    await client.workflow.start('raftCampaign', { taskQueue: config.temporal.taskQueues.cpu, workflowId, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE' });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new UsageError(`a campaign "${workflowId}" exists already; \`prm-raft campaign status ${workflowId}\` shows it`);
    throw err;
  }
  process.stderr.write(`started raftCampaign ${workflowId}${opts.auto ? ' (iterations back to back)' : `; trigger each iteration with: prm-raft campaign next ${workflowId}`}\n`);
  process.stdout.write(`${workflowId}\n`);
  return 0;
}

/** `next`: a Workflow Update with update-with-start, so the same command both starts a campaign and moves it on. */
async function triggerNext(client: Client, config: Config, id: string, wait: boolean): Promise<number> {
  const running = await client.workflow
    .getHandle(id)
    .describe()
    .then((d) => d.status.name === 'RUNNING', (err: unknown) => (err instanceof WorkflowNotFoundError ? null : Promise.reject(err)));
  const finished = () => {
    process.stderr.write(`prm-raft: campaign ${id} has finished; \`prm-raft campaign status ${id}\` shows why\n`);
    return 1;
  };
  if (running === false) return finished();
  let iteration: number;
  try {
    // Only a campaign that does not exist yet needs its input (and its datasets read): a cron line triggers often.
    ({ iteration } = running
      ? await client.workflow.getHandle(id).executeUpdate(nextIterationUpdate)
      : await client.workflow.executeUpdateWithStart(nextIterationUpdate, { startWorkflowOperation: await startOperation(config, id) }));
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      process.stderr.write(`prm-raft: campaign ${id}: next rejected: ${failureChain(err.cause)}\n`);
      return 1;
    }
    if (err instanceof WorkflowExecutionAlreadyStartedError) return finished();
    throw err;
  }
  process.stderr.write(`${id}: iteration ${iteration} triggered\n`);
  if (!wait) return 0;
  const ok = await waitForIteration(client, id, iteration);
  process.stdout.write(campaignMarkdown(await campaignView(client, id)));
  return ok ? 0 : 1;
}

/** Starts the campaign with the update when it does not exist yet; one that stopped stays stopped. */
async function startOperation(config: Config, id: string) {
  return new WithStartWorkflowOperation('raftCampaign', {
    workflowId: id,
    taskQueue: config.temporal.taskQueues.cpu,
    args: [await campaignInput(config, undefined, false)],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
  });
}

async function campaignView(client: Client, id: string): Promise<CampaignView> {
  const handle = client.workflow.getHandle(id);
  const { status } = await handle.describe();
  // A finished campaign answers with its result; a running one with its query.
  return CampaignView.parse(status.name === 'COMPLETED' ? await handle.result() : await handle.query('campaign'));
}

/** Follows iteration t (its child workflow's progress line) until the campaign records it done or failed. */
async function waitForIteration(client: Client, id: string, t: number): Promise<boolean> {
  const child = `${id}-iteration-${t}`;
  for (;;) {
    const view = await campaignView(client, id);
    if (view.iterations >= t) return true;
    if (view.status === 'failed' && view.lastError?.iteration === t) {
      process.stderr.write(`iteration ${t} failed: ${view.lastError.message}\n`);
      return false;
    }
    if (view.status === 'stopped') return false;
    const running = await client.workflow
      .getHandle(child)
      .describe()
      .then((d) => d.status.name === 'RUNNING', () => false);
    if (running) {
      const outcome = await watchRun(client, child).catch(() => null);
      if (outcome?.kind === 'detached') return true;
    } else await new Promise((r) => setTimeout(r, 1000));
  }
}

async function showStatus(client: Client, id: string, wait: boolean, json: boolean): Promise<number> {
  await describeRun(client, id);
  let view = await campaignView(client, id);
  // --wait: until nothing more will happen without a trigger (stopped, failed, paused, or waiting for `next`).
  const settled = (v: CampaignView) => v.status === 'stopped' || v.status === 'failed' || (v.status === 'waiting' && (v.paused || (!v.auto && v.triggers === 0)));
  while (wait && !settled(view)) {
    await waitForIteration(client, id, view.iterations + 1);
    view = await campaignView(client, id);
  }
  process.stdout.write(json ? `${JSON.stringify(view, null, 2)}\n` : campaignMarkdown(view));
  return 0;
}

const DURATION = /^(\d+)(s|m|h|d)$/;

/** A Temporal Schedule that triggers the campaign every DURATION; an iteration still running is left alone (skip). */
async function schedule(client: Client, config: Config, id: string, every: string | undefined): Promise<number> {
  if (every === undefined || !DURATION.test(every)) throw new UsageError(`--every: expected a duration such as 30m, 6h or 1d\nusage:\n${USAGE}`);
  await describeRun(client, id);
  try {
    await client.schedule.create({
      scheduleId: scheduleIdOf(id),
      spec: { intervals: [{ every: every as `${number}${'s' | 'm' | 'h' | 'd'}` }] },
      action: { type: 'startWorkflow', workflowType: 'triggerCampaign', args: [{ campaignId: id }], taskQueue: config.temporal.taskQueues.cpu, workflowId: `${id}-trigger` },
      policies: { overlap: 'SKIP' },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) throw new UsageError(`campaign ${id} already has a schedule; \`prm-raft campaign unschedule ${id}\` removes it`);
    throw err;
  }
  process.stderr.write(`${id}: an iteration is triggered every ${every} (schedule ${scheduleIdOf(id)}); one that comes while an iteration runs is skipped\n`);
  return 0;
}

async function unschedule(client: Client, id: string): Promise<number> {
  try {
    await client.schedule.getHandle(scheduleIdOf(id)).delete();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new UsageError(`campaign ${id} has no schedule`);
    throw err;
  }
  process.stderr.write(`${id}: schedule removed\n`);
  return 0;
}

export function scheduleIdOf(campaignId: string): string {
  return `${campaignId}-schedule`;
}
