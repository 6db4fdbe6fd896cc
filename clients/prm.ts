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

export class PrmClient {
  private turn = 0;

  constructor(private readonly endpoint: PrmEndpoint) {}

  /** Step scores for each item, in item order: one per step for a PRM, one per item for an ORM. */
  async score(items: PrmItem[]): Promise<number[][]> {
    const url = this.endpoint.baseUrls[this.turn++ % this.endpoint.baseUrls.length] as string;
    const sent = this.endpoint.kind === 'orm' ? items.map((i) => ({ ...i, steps: [i.steps.join('\n')] })) : items;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.scoreOnce(url, sent);
      } catch (err) {
        if (err instanceof BadInputError || attempt >= this.endpoint.maxRetries) throw err;
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
