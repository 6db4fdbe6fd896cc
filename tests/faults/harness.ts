// What the fault matrix checks after each fault: which processes of a test store are still running (read from
// /proc, not from the registry under test), and that every shard of a run is present exactly once — read from the
// manifests its workflows received (the histories), checked against the files by sha256 and record ids.
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';

/** Polls `cond` until it holds, or fails naming `what` after `ms`. */
export async function until<T>(cond: () => Promise<T | null | undefined | false> | T | null | undefined | false, what: string, ms: number, every = 200): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export interface LiveProcess {
  pid: number;
  cmd: string;
}

/** Every live (not zombie) process whose command line mentions `needle`. */
export async function processesMentioning(needle: string): Promise<LiveProcess[]> {
  const out: LiveProcess[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      if (/\)\s+[ZX]\s/.test(stat)) continue;
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      if (cmd.includes(needle)) out.push({ pid: Number(name), cmd });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

export async function temporalClient(address: string): Promise<Client> {
  return new Client({ connection: await Connection.connect({ address }) });
}

export interface ActivityOutcomes {
  /** Completed activities of the latest run, in order, with their decoded results. */
  completed: Array<{ type: string; result: unknown }>;
  /** Failed or timed-out attempts that were retried or ended the run, per activity type. */
  failedAttempts: Record<string, number>;
  /** Why the last retried attempt of each activity failed (its failure type, `timeout`, or its message), per type. */
  retryCauses: Record<string, string[]>;
}

/** The activities of a workflow's latest run, from its history. */
export async function activityOutcomes(client: Client, workflowId: string): Promise<ActivityOutcomes> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const typeOf = new Map<string, string>();
  const completed: ActivityOutcomes['completed'] = [];
  const failedAttempts: Record<string, number> = {};
  const retryCauses: Record<string, string[]> = {};
  for (const e of history.events ?? []) {
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) typeOf.set(id, e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const done = e.activityTaskCompletedEventAttributes;
    if (done) {
      const payload = done.result?.payloads?.[0];
      completed.push({ type: typeOf.get(String(done.scheduledEventId)) ?? '?', result: payload ? defaultPayloadConverter.fromPayload(payload) : null });
    }
    const failed = e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (failed) {
      const type = typeOf.get(String(failed.scheduledEventId)) ?? '?';
      failedAttempts[type] = (failedAttempts[type] ?? 0) + 1;
    }
    // Attempts retried inside one activity task are counted on its completion or failure event.
    const attempt = e.activityTaskStartedEventAttributes?.attempt ?? 1;
    if (e.activityTaskStartedEventAttributes && attempt > 1) {
      const type = typeOf.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) ?? '?';
      failedAttempts[type] = (failedAttempts[type] ?? 0) + attempt - 1;
      const last = e.activityTaskStartedEventAttributes.lastFailure;
      const cause = last?.applicationFailureInfo?.type || (last?.timeoutFailureInfo ? 'timeout' : last?.message) || 'unknown';
      (retryCauses[type] ??= []).push(cause);
    }
  }
  return { completed, failedAttempts, retryCauses };
}

interface ShardManifest {
  uri: string;
  count: number;
  sha256: string;
  dataset: string;
  shard: number;
}

/**
 * Every shard activity of `type` in the run completed exactly once per (dataset, shard), `expectShards` of them, each
 * file's sha256 is its manifest's, and no record id appears in two shards (or twice in one). Returns the ids.
 */
export async function expectShardsOnce(outcomes: ActivityOutcomes, type: string, expectShards: number): Promise<string[]> {
  const manifests = outcomes.completed.filter((c) => c.type === type).map((c) => c.result as ShardManifest);
  const keys = manifests.map((m) => `${m.dataset}/${m.shard}`);
  expect(new Set(keys).size, `${type}: a shard completed twice (${keys.join(', ')})`).toBe(keys.length);
  expect(keys, `${type}: shards`).toHaveLength(expectShards);
  const ids: string[] = [];
  for (const m of manifests) {
    const text = await readFile(m.uri, 'utf8');
    expect(createHash('sha256').update(text).digest('hex'), `${type} ${m.uri}: sha256`).toBe(m.sha256);
    const lines = text.trim().split('\n').filter(Boolean);
    expect(lines, `${type} ${m.uri}: records`).toHaveLength(m.count);
    ids.push(...lines.map((l) => String((JSON.parse(l) as { id: unknown }).id)));
  }
  expect(new Set(ids).size, `${type}: a record id repeated across shards`).toBe(ids.length);
  return ids;
}

export type PrmMode = { kind: 'honest' } | { kind: 'garbage' } | { kind: 'unavailable'; requests: number };

/**
 * A PRM in front of the real one: honest, answering scores outside [0, 1], or 503 to the first N score requests. It
 * names its weights `<real>#<identity>` in /v1/models, so its scores are cached apart from the real PRM's.
 */
export async function startPrmProxy(target: string, identity: string) {
  let mode: PrmMode = { kind: 'honest' };
  const seen = { score: 0, answered5xx: 0, garbled: 0 };
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const isScore = req.method === 'POST' && (req.url ?? '').startsWith('/v1/score');
    if (isScore) seen.score += 1;
    if (isScore && mode.kind === 'unavailable' && seen.answered5xx < mode.requests) {
      seen.answered5xx += 1;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'overloaded (fault matrix)' } }));
      return;
    }
    const upstream = await fetch(`${target}${req.url ?? '/'}`, {
      method: req.method,
      headers: { 'content-type': 'application/json' },
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
    });
    let text = await upstream.text();
    if ((req.url ?? '').startsWith('/v1/models') && upstream.ok) {
      const models = JSON.parse(text) as { data: Array<{ id: string; root?: string }> };
      for (const m of models.data) m.root = `${m.root ?? m.id}#${identity}`;
      text = JSON.stringify(models);
    }
    if (isScore && mode.kind === 'garbage' && upstream.ok) {
      const answer = JSON.parse(text) as { scores: Array<{ step_scores: number[] }> };
      for (const s of answer.scores) s.step_scores = s.step_scores.map(() => 1.7);
      text = JSON.stringify(answer);
      seen.garbled += 1;
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(text);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    set(m: PrmMode) {
      mode = m;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
