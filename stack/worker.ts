// A worker process: one Temporal worker per task queue, all activities, the project's workflows.
import { Worker, type NativeConnection } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import { killAllProcessGroups } from '../clients/process.js';
import { knownRegistryDirs, rememberRegistryDir } from '../clients/process-registry.js';
import { startReaper } from './process-reaper.js';

export interface WorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueues: { cpu: string; gpu: string };
  /** Which queues this process serves: the embedded default serves both. */
  serve: Array<'cpu' | 'gpu'>;
  /** Process registries to reap (the config's store); the ones activities write to are added as they are used. */
  processDirs?: string[];
}

/**
 * The queue on which this machine's servers are stopped. Per host, not per worker process: a worker started after
 * the one that started a server was killed still gets its stop, and finds the server by its record.
 */
export function hostQueue(gpuQueue: string): string {
  return `${gpuQueue}@${hostname()}`;
}

/** The compiled workflows beside this file, or the TypeScript sources when run from them (tests). */
export const workflowsPath = ['../workflows/index.js', '../workflows/index.ts']
  .map((p) => fileURLToPath(new URL(p, import.meta.url)))
  .find((p) => existsSync(p)) as string;

export async function createWorkers(opts: WorkerOptions): Promise<Worker[]> {
  // This machine's queue: a server started here can only be stopped here.
  const workerQueue = hostQueue(opts.taskQueues.gpu);
  for (const dir of opts.processDirs ?? []) rememberRegistryDir(dir);
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

/**
 * Runs until SIGINT/SIGTERM; child process groups die with the worker. First, and every 30 s while it runs, it reaps
 * what the process registries hold that nobody else would stop (stack/process-reaper.ts).
 */
export async function runWorkers(workers: Worker[], reap?: { connection: NativeConnection; namespace: string }): Promise<void> {
  const cleanup = () => killAllProcessGroups();
  process.once('exit', cleanup);
  const reaper = reap
    ? await startReaper({
        workflowService: reap.connection.workflowService,
        namespace: reap.namespace,
        dirs: knownRegistryDirs,
        log: (line) => process.stderr.write(`${line}\n`),
      })
    : null;
  try {
    await Promise.all(workers.map((w) => w.run()));
  } finally {
    reaper?.stop();
    cleanup();
  }
}
