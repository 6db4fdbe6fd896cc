// A worker process: one Temporal worker per task queue, all activities, the project's workflows.
import { Worker, type NativeConnection } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import { killAllProcessGroups } from '../clients/process.js';

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueues: { cpu: string; gpu: string };
  /** Which queues this process serves: the embedded default serves both. */
  serve: Array<'cpu' | 'gpu'>;
}

/** The compiled workflows beside this file, or the TypeScript sources when run from them (tests). */
export const workflowsPath = ['../workflows/index.js', '../workflows/index.ts']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)))
  .find((p) => existsSync(p)) as string;

export async function createWorkers(opts: WorkerOptions): Promise<Worker[]> {
  // This process's own queue: a server it starts can only be stopped here.
  const workerQueue = `${opts.taskQueues.gpu}@${hostname()}-${process.pid}`;
  const activities = createActivities({ workerQueue });
  const own = Worker.create({ connection: opts.connection, namespace: opts.namespace, taskQueue: workerQueue, activities });
  return Promise.all([
    own,
    ...opts.serve.map((kind) =>
      Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: opts.taskQueues[kind],
        workflowsPath,
        activities,
        // One GPU job at a time per worker; CPU stages are I/O-bound and overlap well.
        maxConcurrentActivityTaskExecutions: kind === 'gpu' ? 1 : 16,
        // A stopping worker lets running activities notice cancellation and kill their children.
        shutdownGraceTime: '10 seconds',
        // Heartbeat details carry live progress; the default throttling would show it a minute late.
        maxHeartbeatThrottleInterval: '5 seconds',
        defaultHeartbeatThrottleInterval: '5 seconds',
      }),
    ),
  ]);
}

/** Runs until SIGINT/SIGTERM; child process groups die with the worker. */
export async function runWorkers(workers: Worker[]): Promise<void> {
  const cleanup = () => killAllProcessGroups();
  process.once('exit', cleanup);
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    cleanup();
  }
}
