// Live progress of a running workflow: its progress query plus the heartbeats of activities in flight.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { BestOfNProgress } from '../core/best-of-n.js';
import { CampaignView } from '../core/campaign.js';
import { campaignStateLine } from '../report/campaign.js';
import { CompareProgress } from '../core/comparison.js';
import { EvaluationProgress, ShardHeartbeat } from '../core/evaluation.js';
import { LabelHeartbeat, LabelProgress } from '../core/labeling.js';
import { RaftProgress } from '../core/raft.js';
import type { TrainingHeartbeat } from '../activities/training-job.js';

export type WatchOutcome = { kind: 'done'; type: string; result: unknown } | { kind: 'detached' };

/** Heartbeat details of the workflow's running activities. */
async function pendingHeartbeats(handle: WorkflowHandle): Promise<unknown[]> {
  const description = await handle.describe();
  return (description.raw.pendingActivities ?? []).flatMap((a) => {
    const payload = a.heartbeatDetails?.payloads?.[0];
    return payload ? [defaultPayloadConverter.fromPayload(payload)] : [];
  });
}

/** Why the progress stands still: the activities being retried, with the attempt and the last failure. */
export async function retryNotes(handle: WorkflowHandle): Promise<string[]> {
  const description = await handle.describe();
  return (description.raw.pendingActivities ?? []).flatMap((a) => {
    const attempt = a.attempt ?? 1;
    if (attempt <= 1 || !a.lastFailure) return [];
    return [`${a.activityType?.name ?? 'activity'} attempt ${attempt}, last failure: ${innermostMessage(a.lastFailure)}`];
  });
}

/** The root cause of a failure as the server stores it ("policy server … unreachable"), not its wrappers. */
function innermostMessage(failure: { message?: string | null; cause?: unknown }): string {
  let f = failure;
  while (f.cause && typeof f.cause === 'object') f = f.cause as typeof failure;
  return (f.message ?? '').split('\n')[0] || '(no message)';
}

/** Prompts the running shard activities have finished, from their heartbeats. */
async function shardsInFlight(handle: WorkflowHandle): Promise<number> {
  let done = 0;
  for (const beat of await pendingHeartbeats(handle)) {
    const b = ShardHeartbeat.safeParse(beat);
    if (b.success) done += b.data.done;
  }
  return done;
}

/** Questions done (finished shards plus heartbeats of running ones) over questions in all. */
export async function evaluationCounts(handle: WorkflowHandle): Promise<{ stage: string; done: number; total: number }> {
  const progress = EvaluationProgress.parse(await handle.query('progress'));
  return {
    stage: progress.stage,
    done: progress.datasets.reduce((n, d) => n + d.questionsDone, 0) + (await shardsInFlight(handle)),
    total: progress.datasets.reduce((n, d) => n + d.total, 0),
  };
}

/** One progress line for a running workflow, and a count to derive a rate from. */
async function progressLine(client: Client, workflowId: string, type: string): Promise<{ line: string; done: number; total: number } | null> {
  const handle = client.workflow.getHandle(workflowId);
  if (type === 'evaluatePolicy') {
    const p = await evaluationCounts(handle);
    return { line: `${p.stage}: ${p.done}/${p.total} questions`, done: p.done, total: p.total };
  }
  if (type === 'labelPrmData') return labelingLine(handle);
  if (type === 'comparePrms') {
    const c = CompareProgress.parse(await handle.query('progress'));
    if (c.stage === 'iterating') {
      return { line: `iterating: ${c.finished}/${c.iterations} iterations done${c.failed ? `, ${c.failed} failed` : ''}`, done: c.finished + c.failed, total: c.iterations };
    }
    return { line: `${c.stage}: ${c.shardsSampled}/${c.shardsTotal} shards sampled`, done: c.shardsSampled, total: c.shardsTotal };
  }
  if (type === 'bestOfN') return bestOfNLine(handle);
  if (type === 'raftCampaign') {
    const c = CampaignView.parse(await handle.query('campaign'));
    const t = c.iterations + 1;
    if (c.status !== 'running') return { line: campaignStateLine(c).split('\n')[0]!, done: c.iterations, total: c.maxIterations };
    const child = await progressLine(client, `${workflowId}-iteration-${t}`, 'raftIteration').catch(() => null);
    return { line: `iteration ${t}/${c.maxIterations}: ${child?.line ?? 'starting'}`, done: child?.done ?? 0, total: child?.total ?? 0 };
  }
  if (type === 'trainPrm') {
    const { stage } = (await handle.query('progress')) as { stage: string };
    return stage === 'training' ? trainingLine(handle, 'PRM training job') : { line: `${stage}: the labels to a training set`, done: 0, total: 0 };
  }
  const p = RaftProgress.parse(await handle.query('progress'));
  if (p.stage === 'sampling' || p.stage === 'preparing') {
    const shardPrompts = p.shardsTotal > 0 ? p.promptsTotal / p.shardsTotal : 0;
    // Each shard is sampled then, in prm mode, scored: count both halves.
    const done = (p.shardsSampled + p.shardsScored) * shardPrompts + (await shardsInFlight(handle));
    const total = (p.scoring ? 2 : 1) * p.promptsTotal;
    return { line: `${p.stage}: ${p.shardsSampled}/${p.shardsTotal} shards sampled${p.scoring ? `, ${p.shardsScored} scored` : ''}`, done, total };
  }
  if (p.stage === 'training') return trainingLine(handle, 'SFT job');
  if (p.stage === 'evaluating') {
    const child = await evaluationCounts(client.workflow.getHandle(`${workflowId}-after`)).catch(() => null);
    if (!child) return { line: 'evaluating: serving the new policy', done: 0, total: 0 };
    return { line: `evaluating the new policy: ${child.done}/${child.total} questions`, done: child.done, total: child.total };
  }
  return { line: p.stage, done: 0, total: 0 };
}

/** A training job's step and loss from its heartbeat, or what it waits for. */
async function trainingLine(handle: WorkflowHandle, what: string): Promise<{ line: string; done: number; total: number }> {
  const beat = (await pendingHeartbeats(handle)).find((b): b is TrainingHeartbeat => typeof (b as { step?: unknown })?.step === 'number');
  if (!beat) return { line: `training: starting the ${what}`, done: 0, total: 0 };
  if (beat.waitingFor) return { line: `training: waiting for ${beat.waitingFor}`, done: 0, total: 0 };
  return { line: `training: step ${beat.step}/${beat.total}, loss ${beat.loss?.toFixed(3) ?? '?'}`, done: beat.step, total: beat.total };
}

/** Prompts sampled and scored (finished shards plus heartbeats) over prompts × (sampling + each reward model still in). */
async function bestOfNLine(handle: WorkflowHandle): Promise<{ line: string; done: number; total: number }> {
  const p = BestOfNProgress.parse(await handle.query('progress'));
  if (p.stage !== 'sampling') return { line: p.stage === 'tables' ? 'tables: best-of-N statistics and the report' : p.stage, done: 0, total: 0 };
  const live = p.rewardModels.filter((m) => m.error === null);
  const shardPrompts = p.shardsTotal > 0 ? p.promptsTotal / p.shardsTotal : 0;
  const done = (p.shardsSampled + live.reduce((n, m) => n + m.shardsScored, 0)) * shardPrompts + (await shardsInFlight(handle));
  const scored = p.rewardModels.map((m) => `${m.name} ${m.error === null ? `${m.shardsScored}/${p.shardsTotal}` : 'failed'}`).join(', ');
  return { line: `sampling: ${p.shardsSampled}/${p.shardsTotal} shards sampled; scored by ${scored}`, done, total: p.promptsTotal * (1 + live.length) };
}

/** Problems done (finished shards, plus running shards' share by phase) over problems in all. */
async function labelingLine(handle: WorkflowHandle): Promise<{ line: string; done: number; total: number }> {
  const p = LabelProgress.parse(await handle.query('progress'));
  const beats = (await pendingHeartbeats(handle)).flatMap((b) => {
    const parsed = LabelHeartbeat.safeParse(b);
    return parsed.success ? [parsed.data] : [];
  });
  const phases = beats.map((b) => `shard ${b.shard} ${b.phase} ${b.done}/${b.total}`).join(', ');
  return {
    line: `${p.stage}: ${p.shardsDone}/${p.shardsTotal} shards, ${p.problemsDone}/${p.problemsTotal} problems, ${p.completions} completions${phases ? ` (${phases})` : ''}`,
    done: p.problemsDone,
    total: p.problemsTotal,
  };
}

/** Follows a run until it ends; Ctrl-C detaches and leaves the workflow running. */
export async function watchRun(client: Client, workflowId: string): Promise<WatchOutcome> {
  const handle = client.workflow.getHandle(workflowId);
  const { type } = await handle.describe();
  const tty = process.stderr.isTTY === true;
  let detached = false;
  const onSigint = () => {
    detached = true;
  };
  process.once('SIGINT', onSigint);
  const result = handle.result().then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  let lastLine = 0;
  let lastText = '';
  // The rate is measured per line kind (stage), from the first sighting of that kind.
  let rateFrom: { line: string; done: number; at: number } | null = null;
  try {
    for (;;) {
      const settled = await Promise.race([result, new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
      if (settled) {
        if (tty) process.stderr.write('\n');
        if (!settled.ok) throw new Error(`${workflowId} failed: ${failureChain(settled.error)}`);
        return { kind: 'done', type, result: settled.value };
      }
      if (detached) {
        if (tty) process.stderr.write('\n');
        process.stderr.write(`detached; ${workflowId} keeps running. Reattach with: prm-raft status ${workflowId}\n`);
        return { kind: 'detached' };
      }
      const p = await progressLine(client, workflowId, type).catch(() => null);
      if (!p) continue;
      const retrying = await retryNotes(handle).catch(() => []);
      const kind = p.line.split(':')[0] ?? '';
      if (!rateFrom || rateFrom.line !== kind) rateFrom = { line: kind, done: p.done, at: Date.now() };
      const seconds = (Date.now() - rateFrom.at) / 1000;
      const rate = seconds > 0 ? (p.done - rateFrom.done) / seconds : 0;
      const eta = rate > 0 && p.total > p.done ? `, ETA ${formatSeconds((p.total - p.done) / rate)}` : '';
      const text = `${p.line}${rate > 0 ? `, ${rate.toFixed(1)}/s${eta}` : ''}${retrying.length ? ` — retrying: ${retrying.join('; ')}` : ''}`;
      if (tty) process.stderr.write(`\r\x1b[2K${text}`);
      else if (text.split(',')[0] !== lastText.split(',')[0] || Date.now() - lastLine > 15_000) {
        process.stderr.write(`${text}\n`);
        lastLine = Date.now();
      }
      lastText = text;
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function formatSeconds(s: number): string {
  if (s < 90) return `${Math.ceil(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

/** "activity evaluateShard failed: policy server … unreachable" — every cause, outermost first. */
export function failureChain(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.message && !messages.includes(e.message)) messages.push(e.message);
  }
  return messages.join(': ') || String(err);
}
