// Live progress of a running workflow: its progress query plus the heartbeats of shards in flight.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { EvaluationProgress, ShardHeartbeat } from '../core/evaluation.js';
import type { EvaluationSummary } from '../core/manifests.js';

export type WatchOutcome = { kind: 'done'; result: EvaluationSummary } | { kind: 'detached' };

/** Questions done (finished shards plus heartbeats of running ones) over questions in all. */
export async function readProgress(handle: WorkflowHandle): Promise<{ stage: string; done: number; total: number; correct: number }> {
  const progress = EvaluationProgress.parse(await handle.query('progress'));
  const description = await handle.describe();
  let inFlight = 0;
  for (const activity of description.raw.pendingActivities ?? []) {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const beat = ShardHeartbeat.safeParse(defaultPayloadConverter.fromPayload(payload));
    if (beat.success) inFlight += beat.data.done;
  }
  const done = progress.datasets.reduce((n, d) => n + d.questionsDone, 0) + inFlight;
  const total = progress.datasets.reduce((n, d) => n + d.total, 0);
  const correct = progress.datasets.reduce((n, d) => n + d.correct, 0);
  return { stage: progress.stage, done, total, correct };
}

/** Follows a run until it ends; Ctrl-C detaches and leaves the workflow running. */
export async function watchRun(client: Client, workflowId: string): Promise<WatchOutcome> {
  const handle = client.workflow.getHandle(workflowId);
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let firstDone: number | null = null;
  let lastLine = 0;
  let detached = false;
  const onSigint = () => {
    detached = true;
  };
  process.once('SIGINT', onSigint);
  const result = handle.result().then(
    (value) => ({ ok: true as const, value: value as EvaluationSummary }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  try {
    for (;;) {
      const settled = await Promise.race([result, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
      if (settled) {
        if (tty) process.stderr.write('\n');
        if (!settled.ok) throw new Error(`${workflowId} failed: ${failureChain(settled.error)}`);
        return { kind: 'done', result: settled.value };
      }
      if (detached) {
        if (tty) process.stderr.write('\n');
        process.stderr.write(`detached; ${workflowId} keeps running. Reattach with: prm-raft status ${workflowId}\n`);
        return { kind: 'detached' };
      }
      const p = await readProgress(handle).catch(() => null);
      if (!p) continue;
      firstDone ??= p.done;
      const seconds = (Date.now() - started) / 1000;
      const rate = (p.done - firstDone) / Math.max(seconds, 1e-9);
      const eta = rate > 0 ? `${Math.ceil((p.total - p.done) / rate)}s` : '?';
      const line = `${p.stage}: ${p.done}/${p.total} questions, ${rate.toFixed(2)}/s, ETA ${eta}`;
      if (tty) process.stderr.write(`\r\x1b[2K${line}`);
      else if (Date.now() - lastLine > 10_000) {
        process.stderr.write(`${line}\n`);
        lastLine = Date.now();
      }
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

export function formatAccuracyTable(summary: EvaluationSummary): string {
  const rows = [['dataset', 'questions', 'correct', 'accuracy', 'truncated']];
  for (const d of summary.datasets) {
    rows.push([d.dataset, String(d.total), String(d.correct), `${(100 * d.accuracy).toFixed(1)}%`, String(d.truncated)]);
    for (const [group, g] of Object.entries(d.groups).sort(([a], [b]) => a.localeCompare(b))) {
      rows.push([`  ${group}`, String(g.total), String(g.correct), `${(100 * g.accuracy).toFixed(1)}%`, '']);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  return `policy ${summary.policy} (results in ${summary.runDir})\n${lines.join('\n')}\n`;
}

/** "activity evaluateShard failed: policy server … unreachable" — every cause, outermost first. */
export function failureChain(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.message && !messages.includes(e.message)) messages.push(e.message);
  }
  return messages.join(': ') || String(err);
}
