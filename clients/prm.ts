// The PRM service (the project's JSON protocol, DESIGN §4, or vLLM's Pooling API for an off-the-shelf PRM):
// every reply validated at the edge.
import { z } from 'zod';
import { BadInputError, TransientError } from '../core/errors.js';
import type { PrmConfig } from '../core/config.js';
import { PoolingReply, poolingRequest, stepScoresFromPooling, type VllmPoolingConfig } from '../core/vllm-pooling.js';

export interface PrmItem {
  id: string;
  question: string;
  steps: string[];
}

export const ScoreReply = z.strictObject({
  model: z.string(),
  scores: z.array(z.strictObject({ id: z.string(), step_scores: z.array(z.number().min(0).max(1)) })),
});

export type PrmEndpoint = Pick<PrmConfig, 'model' | 'baseUrls' | 'kind' | 'requestTimeoutSeconds' | 'maxRetries' | 'vllmPooling'>;

/** The prm_server's answer when a forward pass ran out of device memory: the request must be split. */
export const TOO_LARGE_FOR_ONE_FORWARD = 507;

/** A 507: not retried as it is, split instead. */
class TooLargeForOneForward extends Error {}

/**
 * The server refused the request for what its items hold (a response over the model's context, one item too large
 * for a forward pass): the items may be scored one at a time and the refused one left unscored. Replies that break
 * the protocol (a score outside [0, 1], a wrong number of scores) are plain BadInputErrors: the server is wrong.
 */
export class PrmRefusal extends BadInputError {
  override name = 'PrmRefusal';
}

// 4xx statuses about the request's content; others (401, 403, 404: key, model, URL) are about the config.
const CONTENT_REFUSALS = new Set([400, 413, 422]);

export class PrmClient {
  private turn = 0;

  constructor(private readonly endpoint: PrmEndpoint) {}

  /** Step scores for each item, in item order: one per step for a PRM, one per item for an ORM. */
  async score(items: PrmItem[]): Promise<number[][]> {
    const sent = this.endpoint.kind === 'orm' ? items.map((i) => ({ ...i, steps: [i.steps.join('\n')] })) : items;
    return this.scoreSplitting(sent);
  }

  /** A request too large for one forward pass is sent again in halves, down to one item. */
  private async scoreSplitting(items: PrmItem[]): Promise<number[][]> {
    try {
      return await this.scoreWithRetries(items);
    } catch (err) {
      if (!(err instanceof TooLargeForOneForward)) throw err;
      if (items.length === 1) throw new PrmRefusal(`item "${(items[0] as PrmItem).id}" does not fit in one forward pass of the PRM: ${err.message}`);
      const half = Math.ceil(items.length / 2);
      return [...(await this.scoreSplitting(items.slice(0, half))), ...(await this.scoreSplitting(items.slice(half)))];
    }
  }

  private async scoreWithRetries(items: PrmItem[]): Promise<number[][]> {
    const url = this.endpoint.baseUrls[this.turn++ % this.endpoint.baseUrls.length] as string;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.scoreOnce(url, items);
      } catch (err) {
        if (err instanceof BadInputError || err instanceof TooLargeForOneForward || attempt >= this.endpoint.maxRetries) throw err;
        await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** attempt)));
      }
    }
  }

  /** One request to whichever API serves the model; the same item order and step counts either way. */
  private async scoreOnce(baseUrl: string, items: PrmItem[]): Promise<number[][]> {
    const base = baseUrl.replace(/\/$/, '');
    const format = this.endpoint.vllmPooling;
    return format ? this.scoreByPooling(`${base}/pooling`, format, items) : this.scoreByProtocol(`${base}/v1/score`, items);
  }

  private async scoreByPooling(url: string, format: VllmPoolingConfig, items: PrmItem[]): Promise<number[][]> {
    const where = `vLLM server ${url} (model "${this.endpoint.model}")`;
    const reply = PoolingReply.safeParse(await this.post(url, poolingRequest(this.endpoint.model, format, items)));
    if (!reply.success) throw new BadInputError(`${where} answered off vLLM's Pooling API: ${issueText(reply.error)}`);
    return stepScoresFromPooling(format, items, reply.data, where);
  }

  private async scoreByProtocol(url: string, items: PrmItem[]): Promise<number[][]> {
    const reply = ScoreReply.safeParse(await this.post(url, { model: this.endpoint.model, items }));
    if (!reply.success) throw new BadInputError(`PRM server ${url} answered off the protocol: ${issueText(reply.error)}`);
    const byId = new Map(reply.data.scores.map((s) => [s.id, s.step_scores]));
    return items.map((item) => {
      const scores = byId.get(item.id);
      if (!scores) throw new BadInputError(`PRM server ${url} returned no scores for item "${item.id}"`);
      if (scores.length !== item.steps.length) {
        throw new BadInputError(`PRM server ${url} returned ${scores.length} scores for item "${item.id}" with ${item.steps.length} steps`);
      }
      return scores;
    });
  }

  /** POSTs JSON and returns the parsed reply; the status decides what is retried (both APIs answer alike). */
  private async post(url: string, request: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(this.endpoint.requestTimeoutSeconds * 1000),
      });
    } catch (err) {
      throw new TransientError(`PRM server ${url} unreachable: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (res.status === TOO_LARGE_FOR_ONE_FORWARD) throw new TooLargeForOneForward(`PRM server ${url} answered ${res.status}: ${errorMessage(text)}`);
    if (res.status === 408 || res.status === 429 || res.status >= 500) throw new TransientError(`PRM server ${url} answered ${res.status}: ${text.slice(0, 300)}`);
    if (!res.ok) {
      const Refusal = CONTENT_REFUSALS.has(res.status) ? PrmRefusal : BadInputError;
      throw new Refusal(`PRM server ${url} answered ${res.status}: ${errorMessage(text)}`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new BadInputError(`PRM server ${url} answered with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`);
    }
  }
}

function issueText(error: z.ZodError): string {
  const issue = error.issues[0];
  return `${issue?.path.join('.')}: ${issue?.message}`;
}

function errorMessage(text: string): string {
  try {
    // Ours and vLLM's today: {"error": {"message"}}; vLLM before its error rework: {"object": "error", "message"}.
    const parsed = JSON.parse(text) as { error?: { message?: string }; message?: string };
    return parsed.error?.message ?? parsed.message ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}
