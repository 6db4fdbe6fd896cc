// The simulated policy: a vLLM replica of a 7B model on one simulated GPU, behind vLLM's OpenAI completions API.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SimConfig } from './config.js';
import type { Tenant } from './gpus.js';
import { keyedSeed, mulberry32 } from '../../core/random.js';
import { answerOf, kindOf, respond, type Shapes } from './lengths.js';
import { advanceBatch, PrefixCache, textTokens, type Sequence } from './model.js';

interface Request {
  pending: number;
  choices: Array<{ text: string; finish: string }>;
  resolve: () => void;
}
type Seq = Sequence & { req: Request };

/** Simulated seconds from a request's arrival to its answer: the client's requestTimeoutSeconds counts these. */
export interface Latency {
  count: number;
  sum: number;
  max: number;
  over300: number;
  over600: number;
}

export function newLatency(): Latency {
  return { count: 0, sum: 0, max: 0, over300: 0, over600: 0 };
}

export function recordLatency(l: Latency, seconds: number): void {
  l.count += 1;
  l.sum += seconds;
  l.max = Math.max(l.max, seconds);
  if (seconds > 300) l.over300 += 1;
  if (seconds > 600) l.over600 += 1;
}

export interface PolicyStats {
  latency: Latency;
  requests: number;
  sequences: number;
  promptTokens: number;
  cachedPromptTokens: number;
  outputTokens: number;
}

export class PolicyReplica implements Tenant {
  private waiting: Seq[] = [];
  private head = 0;
  private running: Seq[] = [];
  private readonly cache: PrefixCache;
  readonly stats: PolicyStats = { latency: newLatency(), requests: 0, sequences: 0, promptTokens: 0, cachedPromptTokens: 0, outputTokens: 0 };

  constructor(private readonly sim: SimConfig, private readonly shapes: Shapes, private readonly compression = 1) {
    this.cache = new PrefixCache(sim.policy.prefixCacheEntries);
  }

  hasWork(): boolean {
    return this.running.length > 0 || this.head < this.waiting.length;
  }

  advance(budget: number): number {
    // A freed slot takes the next waiting sequence at once, within the tick: a tick of several simulated seconds
    // (a high compression) must not leave finished sequences' slots empty until the next one.
    let used = 0;
    for (;;) {
      while (this.running.length < this.sim.policy.maxBatch && this.head < this.waiting.length) this.running.push(this.waiting[this.head++] as Seq);
      if (this.head > 4096 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      const step = advanceBatch(this.running, budget - used, this.sim.policy);
      used += step.used;
      if (step.finished.length === 0) return used;
      const done = new Set(step.finished);
      this.running = this.running.filter((s) => !done.has(s));
      for (const s of step.finished as Seq[]) if (--s.req.pending === 0) s.req.resolve();
      if (used >= budget - 1e-12) return used;
    }
  }

  /** `n` completions of `prompt`; resolves when the simulated GPU has decoded all of them. */
  complete(prompt: string, n: number, maxTokens: number, seed: number): Promise<Array<{ text: string; finish: string }>> {
    const q = this.sim.lengths.questionCharsPerToken;
    const promptTokens = textTokens(prompt, q);
    const cached = textTokens(prompt.slice(0, this.cache.lookupAndInsert(prompt)), q);
    const prefillEach = Math.max(0, promptTokens - cached) / n;
    this.stats.requests += 1;
    this.stats.promptTokens += promptTokens;
    this.stats.cachedPromptTokens += cached;
    const kind = kindOf(prompt);
    const answer = answerOf(prompt) ?? '0';
    const done = [...prompt.matchAll(/\[\d+ tok\]/g)].length;
    const pool = this.shapes[kind];
    const arrived = Date.now();
    return new Promise((resolve) => {
      const req: Request = {
        pending: n,
        choices: [],
        resolve: () => {
          recordLatency(this.stats.latency, ((Date.now() - arrived) / 1000) * this.compression);
          resolve(req.choices);
        },
      };
      for (let j = 0; j < n; j += 1) {
        const random = mulberry32(keyedSeed(seed + j, prompt));
        const shape = pool[Math.floor(random() * pool.length)] ?? [50];
        const r = respond(shape, done, answer, random() < this.sim.lengths.correctShare, maxTokens, random);
        req.choices.push({ text: r.text, finish: r.truncated ? 'length' : 'stop' });
        this.stats.sequences += 1;
        this.stats.outputTokens += r.tokens;
        this.waiting.push({ prefill: prefillEach, decode: Math.max(1, r.tokens), req });
      }
    });
  }
}

export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

export function reply(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** vLLM's /v1/models, /health and /v1/completions (a list of prompts, `n` each) for one replica. */
export function policyHandler(replica: PolicyReplica, model: string, maxModelLen: number, readyAt: number) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    try {
      if (Date.now() < readyAt) return reply(res, 503, { error: { message: 'loading' } });
      if (req.url === '/health') return reply(res, 200, {});
      if (req.url === '/v1/models') return reply(res, 200, { object: 'list', data: [{ id: model, object: 'model', created: 0, owned_by: 'sim', root: `/sim/${model}`, max_model_len: maxModelLen }] });
      if (req.url !== '/v1/completions' || req.method !== 'POST') return reply(res, 404, { error: { message: `no route ${req.url}` } });
      const b = (await readBody(req)) as { model?: string; prompt: string | string[]; n?: number; max_tokens?: number; seed?: number };
      if (b.model !== model) return reply(res, 404, { error: { message: `The model \`${b.model}\` does not exist.`, type: 'NotFoundError', code: 404 } });
      const prompts = Array.isArray(b.prompt) ? b.prompt : [b.prompt];
      const n = b.n ?? 1;
      const answers = await Promise.all(prompts.map((p, i) => replica.complete(p, n, b.max_tokens ?? 256, (b.seed ?? 0) + i * 7919)));
      const choices = answers.flatMap((a, i) => a.map((c, j) => ({ index: i * n + j, text: c.text, finish_reason: c.finish, logprobs: null })));
      reply(res, 200, { id: 'cmpl-sim', object: 'text_completion', created: 0, model, choices, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } });
    } catch (err) {
      reply(res, 500, { error: { message: (err as Error).message } });
    }
  };
}
