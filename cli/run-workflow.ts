// Starting a workflow from the command line and following it: shared by eval, iterate and resume.
import type { Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Config, EvalDatasetConfig } from '../core/config.js';
import { runDir } from '../core/layout.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';
import { preflightDatasets } from './preflight.js';
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

/** A workflow a command starts from a config: its input, and the datasets that input makes it read. */
export interface ConfigWorkflow<T> {
  type: string;
  idPrefix: string;
  /** May read the store (e.g. a run named by a flag); what it throws is a usage error. */
  inputOf: (config: Config) => T | Promise<T>;
  /** Omitted by a workflow that reads no dataset file (PRM training reads a labeling run). */
  datasetsOf?: (input: T) => readonly EvalDatasetConfig[];
}

/**
 * Loads the config, builds the workflow's input from it (what it lacks is a usage error), reads every dataset it
 * will read (bad input is a usage error, before anything starts), starts it and follows it.
 */
export async function startFromConfig<T>(configPath: string, workflow: ConfigWorkflow<T>, opts: FollowOptions): Promise<number> {
  const config = await loadConfig(configPath);
  let input: T;
  try {
    input = await workflow.inputOf(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  await preflightDatasets(workflow.datasetsOf?.(input) ?? []);
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  const workflowId = newWorkflowId(workflow.idPrefix, config.name);
  return startAndFollow(client, { type: workflow.type, workflowId, taskQueue: config.temporal.taskQueues.cpu, input }, opts);
}

/**
 * `COMMAND --config FILE [--policy P] [--json] [--detach]`: start the workflow built from the config and follow it.
 * `--policy` is a model name the policy server serves, or a checkpoint directory the pipeline serves itself.
 */
export async function configWorkflowCommand<T>(
  args: string[],
  usage: string,
  workflow: Omit<ConfigWorkflow<T>, 'inputOf'> & { inputOf: (config: Config, policy: string | undefined, flags: Record<string, string | undefined>) => T | Promise<T> },
  policyIs: 'model' | 'checkpoint',
  /** The command's own string flags besides the common ones, handed to `inputOf`. */
  extraFlags: readonly string[] = [],
): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      config: { type: 'string' },
      policy: { type: 'string' },
      json: { type: 'boolean', default: false },
      detach: { type: 'boolean', default: false },
      ...Object.fromEntries(extraFlags.map((f) => [f, { type: 'string' as const }])),
    },
    usage,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${usage}`);
  const policy = values.policy;
  if (policyIs === 'checkpoint' && policy !== undefined && !(await isDirectory(policy))) {
    throw new UsageError(`--policy: ${policy} is not a checkpoint directory (the pipeline serves it itself for sampling and evaluation)`);
  }
  const flags = Object.fromEntries(extraFlags.map((f) => [f, (values as Record<string, unknown>)[f] as string | undefined]));
  return startFromConfig(values.config, { ...workflow, inputOf: (c) => workflow.inputOf(c, policy, flags) }, values);
}

/** A run's folder: RUN itself when it is one, else the run of that id in the config's store. */
export async function runFolder(run: string, configPath: string): Promise<string> {
  return runFolderIn(run, (await loadConfig(configPath)).store.root);
}

/** A run's folder: RUN itself when it is one, else the run of that id under `storeRoot`. */
export async function runFolderIn(run: string, storeRoot: string): Promise<string> {
  if (await isDirectory(run)) return run;
  if (run.includes('/')) throw new UsageError(`${run}: no such run folder`);
  return runDir(storeRoot, run);
}

export function isDirectory(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}
