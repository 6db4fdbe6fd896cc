// A worker's reaper: at start-up and every so often while it runs, it reads the process registries and stops what
// nobody else would — jobs whose worker died, servers whose worker died while starting them, servers whose run has
// ended. Decisions are core/process-record.ts's decideReap; this file gathers the facts (from /proc and Temporal).
import type { NativeConnection } from '@temporalio/worker';
import { hostname } from 'node:os';
import { forgetRecord, here, isSame, listRecords, recordState, stopRecorded } from '../clients/process-registry.js';
import { isAlive } from '../clients/process.js';
import { decideReap, type ProcessFacts, type ProcessRecord, workerPidOnHost } from '../core/process-record.js';

type WorkflowService = NativeConnection['workflowService'];

// temporal.api.enums.v1 values (the proto package is not a direct dependency).
const WORKFLOW_EXECUTION_STATUS_RUNNING = 1;
const PENDING_ACTIVITY_STATE_SCHEDULED = 1;

export interface ReaperOptions {
  workflowService: WorkflowService | null;
  namespace: string;
  dirs: () => string[];
  log: (line: string) => void;
}

interface RunFacts {
  workflow: ProcessFacts['workflow'];
  /** Activity id → attempt, of the activities pending and started in that run. */
  started: Map<string, number>;
}

async function describeRun(service: WorkflowService | null, namespace: string, activity: NonNullable<ProcessRecord['activity']>): Promise<RunFacts> {
  if (!service) return { workflow: 'unknown', started: new Map() };
  try {
    const res = await service.describeWorkflowExecution({ namespace, execution: { workflowId: activity.workflowId, runId: activity.runId } });
    const running = res.workflowExecutionInfo?.status === WORKFLOW_EXECUTION_STATUS_RUNNING;
    const started = new Map<string, number>();
    for (const a of res.pendingActivities ?? []) {
      const state = a.state ?? 0;
      if (a.activityId && state !== PENDING_ACTIVITY_STATE_SCHEDULED) started.set(a.activityId, a.attempt ?? 0);
    }
    return { workflow: running ? 'running' : 'closed', started };
  } catch (err) {
    // NOT_FOUND: the run no longer exists (or never did in this namespace): nothing will use the process.
    if ((err as { code?: number }).code === 5) return { workflow: 'closed', started: new Map() };
    return { workflow: 'unknown', started: new Map() };
  }
}

/**
 * The attempt whose worker died is failed at once (the retry need not wait for its heartbeat timeout), but only while
 * it is still the pending attempt: a later one that already took over is never touched.
 */
async function failLostAttempt(opts: ReaperOptions, record: ProcessRecord): Promise<void> {
  const a = record.activity;
  if (!opts.workflowService || !a) return;
  try {
    await opts.workflowService.respondActivityTaskFailedById({
      namespace: opts.namespace,
      workflowId: a.workflowId,
      runId: a.runId,
      activityId: a.activityId,
      identity: `reaper ${process.pid}@${hostname()}`,
      failure: {
        message: `the worker running attempt ${a.attempt} (pid ${record.owner.pid} on ${record.host}) died; its ${record.what} was stopped`,
        source: 'prm-raft',
        applicationFailureInfo: { type: 'WorkerLost', nonRetryable: false },
      },
    });
    opts.log(`reaper: failed attempt ${a.attempt} of ${a.activityType} in ${a.workflowId}, so it is retried now`);
  } catch (err) {
    opts.log(`reaper: could not fail attempt ${a.attempt} of ${a.activityType} in ${a.workflowId} (its heartbeat timeout will): ${(err as Error).message}`);
  }
}

/**
 * At start-up: the activities that a dead worker of this machine had started (the pid in its identity is not running
 * here) are failed at once, so that they are retried now rather than after their heartbeat timeout. Only running
 * workflows are read, at most `limit` of them; an attempt some live worker took over is never touched.
 */
export async function handBackLostActivities(opts: Omit<ReaperOptions, 'dirs'>, limit = 1000): Promise<number> {
  const service = opts.workflowService;
  if (!service) return 0;
  const host = hostname();
  let failed = 0;
  let seen = 0;
  let nextPageToken: Uint8Array | undefined;
  try {
    do {
      const page = await service.listWorkflowExecutions({ namespace: opts.namespace, query: 'ExecutionStatus="Running"', pageSize: 100, nextPageToken });
      for (const ex of page.executions ?? []) {
        if (seen++ >= limit) return failed;
        const workflowId = ex.execution?.workflowId;
        const runId = ex.execution?.runId;
        if (!workflowId || !runId) continue;
        const desc = await service.describeWorkflowExecution({ namespace: opts.namespace, execution: { workflowId, runId } }).catch(() => null);
        for (const a of desc?.pendingActivities ?? []) {
          if ((a.state ?? 0) === PENDING_ACTIVITY_STATE_SCHEDULED || !a.activityId) continue;
          const pid = workerPidOnHost(a.lastWorkerIdentity ?? '', host);
          if (pid === null || pid === process.pid || isAlive(pid)) continue;
          try {
            await service.respondActivityTaskFailedById({
              namespace: opts.namespace,
              workflowId,
              runId,
              activityId: a.activityId,
              identity: `reaper ${process.pid}@${host}`,
              failure: {
                message: `the worker running attempt ${a.attempt} (${a.lastWorkerIdentity}) is gone`,
                source: 'prm-raft',
                applicationFailureInfo: { type: 'WorkerLost', nonRetryable: false },
              },
            });
            failed += 1;
            opts.log(`reaper: ${a.activityType?.name ?? 'activity'} ${a.activityId} of ${workflowId} was held by dead worker ${a.lastWorkerIdentity}; retried now`);
          } catch (err) {
            opts.log(`reaper: could not hand back ${a.activityType?.name ?? 'activity'} ${a.activityId} of ${workflowId} (its heartbeat timeout will): ${(err as Error).message}`);
          }
        }
      }
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken);
  } catch (err) {
    opts.log(`reaper: could not list running workflows: ${(err as Error).message}`);
  }
  return failed;
}

/** One pass over every registry. Returns the records it stopped. */
export async function reapOnce(opts: ReaperOptions): Promise<ProcessRecord[]> {
  const stopped: ProcessRecord[] = [];
  const runs = new Map<string, Promise<RunFacts>>();
  for (const dir of opts.dirs()) {
    for (const rp of listRecords(dir, (path, why) => opts.log(`reaper: ${path} is not a process record (${why}); left alone`))) {
      const { record } = rp;
      if (record.host !== here().host) continue;
      const state = recordState(record);
      const ownerAlive = isSame(record.owner);
      let run: RunFacts = { workflow: 'unknown', started: new Map() };
      // Temporal is asked only when the answer can change the decision.
      if (state !== 'gone' && record.activity && (record.kind === 'server' || !ownerAlive)) {
        const key = `${record.activity.workflowId}/${record.activity.runId}`;
        if (!runs.has(key)) runs.set(key, describeRun(opts.workflowService, opts.namespace, record.activity));
        run = await runs.get(key)!;
      }
      const attemptPending = record.activity !== null && run.started.get(record.activity.activityId) === record.activity.attempt;
      const decision = decideReap(record, here(), { state, ownerAlive, workflow: run.workflow, attemptPending });
      if (decision.action === 'keep') continue;
      if (decision.action === 'forget') {
        forgetRecord(rp.path);
        continue;
      }
      opts.log(`reaper: stopping the ${record.what} (pid ${record.process.pid}): ${decision.why}`);
      await stopRecorded(rp);
      stopped.push(record);
      if (!ownerAlive && attemptPending) await failLostAttempt(opts, record);
    }
  }
  return stopped;
}

/** Reaps once now, then every `intervalMs` until stopped. */
export async function startReaper(opts: ReaperOptions, intervalMs = 30_000): Promise<{ stop: () => void }> {
  const pass = async () => {
    try {
      await reapOnce(opts);
    } catch (err) {
      opts.log(`reaper: ${(err as Error).message}`);
    }
  };
  await pass();
  // After the registries: a dead worker's processes are stopped before its activities are retried.
  await handBackLostActivities(opts);
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void pass().finally(() => (running = false));
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
