// The simulated PRM: one forward pass over each item's question and steps, at a cost per token, one request at a
// time per simulated GPU, behind the project's /v1/score protocol.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimConfig } from './config.js';
import type { Tenant } from './gpus.js';
import { keyedSeed } from '../../core/random.js';
import { textTokens } from './model.js';
import { newLatency, readBody, type Latency, recordLatency, reply } from './policy-stub.js';

interface Job {
  left: number;
  resolve: () => void;
}

/** Simulated seconds a PRM request takes: its overhead plus its tokens at the forward pass's rate. */
export function prmRequestSeconds(items: ReadonlyArray<{ question: string; steps: readonly string[] }>, sim: SimConfig): number {
  const tokens = items.reduce((n, it) => n + textTokens(it.question, sim.lengths.questionCharsPerToken) + it.steps.reduce((m, s) => m + textTokens(s, sim.lengths.charsPerToken), 0), 0);
  return sim.prm.requestOverheadMs / 1000 + tokens / sim.prm.tokensPerSecond;
}

export class PrmReplica implements Tenant {
  private queue: Job[] = [];
  readonly stats: { requests: number; items: number; seconds: number; latency: Latency } = { requests: 0, items: 0, seconds: 0, latency: newLatency() };
  constructor(private readonly sim: SimConfig, private readonly compression = 1) {}

  hasWork(): boolean {
    return this.queue.length > 0;
  }

  advance(budget: number): number {
    let left = budget;
    while (left > 0 && this.queue.length > 0) {
      const job = this.queue[0] as Job;
      const spend = Math.min(left, job.left);
      job.left -= spend;
      left -= spend;
      if (job.left <= 1e-12) {
        this.queue.shift();
        job.resolve();
      }
    }
    return budget - left;
  }

  score(items: ReadonlyArray<{ question: string; steps: readonly string[] }>): Promise<void> {
    const seconds = prmRequestSeconds(items, this.sim);
    this.stats.requests += 1;
    this.stats.items += items.length;
    this.stats.seconds += seconds;
    const arrived = Date.now();
    return new Promise((resolve) =>
      this.queue.push({
        left: seconds,
        resolve: () => {
          recordLatency(this.stats.latency, ((Date.now() - arrived) / 1000) * this.compression);
          resolve();
        },
      }),
    );
  }
}

export function prmHandler(replica: PrmReplica, model: string) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    try {
      if (req.url === '/health') return reply(res, 200, {});
      if (req.url === '/v1/models') return reply(res, 200, { object: 'list', data: [{ id: model, object: 'model', root: `/sim/${model}` }] });
      if (req.url !== '/v1/score' || req.method !== 'POST') return reply(res, 404, { error: { message: `no route ${req.url}` } });
      const b = (await readBody(req)) as { model: string; items: Array<{ id: string; question: string; steps: string[] }> };
      if (b.model !== model) return reply(res, 400, { error: { message: `this server serves ${model}, not ${b.model}` } });
      await replica.score(b.items);
      reply(res, 200, { model, scores: b.items.map((it) => ({ id: it.id, step_scores: it.steps.map((s, k) => (keyedSeed(0, `${it.id}/${k}/${s}`) % 1000) / 1000) })) });
    } catch (err) {
      reply(res, 500, { error: { message: (err as Error).message } });
    }
  };
}
