// The PRM service (the project's JSON protocol, DESIGN §4): every reply validated at the edge.
import { z } from 'zod';
import { BadInputError, TransientError } from '../core/errors.js';
import type { PrmConfig } from '../core/config.js';

export interface PrmItem {
  id: string;
  question: string;
  steps: string[];
}

export const ScoreReply = z.strictObject({
  model: z.string(),
  scores: z.array(z.strictObject({ id: z.string(), step_scores: z.array(z.number().min(0).max(1)) })),
});

export type PrmEndpoint = Pick<PrmConfig, 'model' | 'baseUrls' | 'kind' | 'requestTimeoutSeconds' | 'maxRetries'>;

/** The prm_server's answer when a forward pass ran out of device memory: the request must be split. */
export const TOO_LARGE_FOR_ONE_FORWARD = 507;

/** A 507: not retried as it is, split instead. */
class TooLargeForOneForward extends Error {}

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
      if (items.length === 1) throw new BadInputError(`item "${(items[0] as PrmItem).id}" does not fit in one forward pass of the PRM: ${err.message}`);
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

  private async scoreOnce(baseUrl: string, items: PrmItem[]): Promise<number[][]> {
    const url = `${baseUrl.replace(/\/$/, '')}/v1/score`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: this.endpoint.model, items }),
        signal: AbortSignal.timeout(this.endpoint.requestTimeoutSeconds * 1000),
      });
    } catch (err) {
      throw new TransientError(`PRM server ${url} unreachable: ${(err as Error).message}`);
    }
    const text = await res.text();
    if (res.status === TOO_LARGE_FOR_ONE_FORWARD) throw new TooLargeForOneForward(`PRM server ${url} answered ${res.status}: ${errorMessage(text)}`);
    if (res.status === 408 || res.status === 429 || res.status >= 500) throw new TransientError(`PRM server ${url} answered ${res.status}: ${text.slice(0, 300)}`);
    if (!res.ok) throw new BadInputError(`PRM server ${url} answered ${res.status}: ${errorMessage(text)}`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new BadInputError(`PRM server ${url} answered with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`);
    }
    const reply = ScoreReply.safeParse(body);
    if (!reply.success) {
      const issue = reply.error.issues[0];
      throw new BadInputError(`PRM server ${url} answered off the protocol: ${issue?.path.join('.')}: ${issue?.message}`);
    }
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
}

function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    return parsed.error?.message ?? text.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}
