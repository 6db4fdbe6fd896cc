// The policy behind an OpenAI-compatible completions API (vLLM in production), spread over replicas.
import OpenAI from 'openai';
import { BadInputError, TransientError } from '../core/errors.js';
import type { PolicyConfig } from '../core/config.js';

export interface SamplingParams {
  n: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  stop: string[];
  seed?: number;
}

export interface Sample {
  text: string;
  finishReason: string;
  completionTokens?: number;
}

export interface ServedModel {
  id: string;
  /** The context length the server reports (vLLM's max_model_len), when it does. */
  maxModelLen?: number;
  /** What the server says the model was loaded from (vLLM's `root`). */
  root?: string;
}

export type PolicyEndpoint = Pick<PolicyConfig, 'model' | 'baseUrls' | 'apiKeyEnv' | 'requestTimeoutSeconds' | 'maxRetries'>;

export class PolicyClient {
  private readonly clients: Array<{ url: string; api: OpenAI }>;
  private turn = 0;

  constructor(private readonly endpoint: PolicyEndpoint) {
    const apiKey = (endpoint.apiKeyEnv && process.env[endpoint.apiKeyEnv]) || 'EMPTY';
    this.clients = endpoint.baseUrls.map((url) => ({
      url,
      api: new OpenAI({ baseURL: url, apiKey, timeout: endpoint.requestTimeoutSeconds * 1000, maxRetries: endpoint.maxRetries }),
    }));
  }

  /** Round-robin over the replicas. */
  private next() {
    const client = this.clients[this.turn % this.clients.length];
    this.turn += 1;
    if (!client) throw new Error('no policy base URL configured');
    return client;
  }

  /** Models served by every replica. */
  async listModels(): Promise<Array<{ url: string; models: ServedModel[] }>> {
    return Promise.all(
      this.clients.map(async ({ url, api }) => {
        try {
          const page = await api.models.list();
          const models = page.data.map((m) => {
            const extra = m as unknown as { max_model_len?: number; root?: string };
            return { id: m.id, maxModelLen: extra.max_model_len, root: extra.root };
          });
          return { url, models };
        } catch (err) {
          throw classify(err, url);
        }
      }),
    );
  }

  /** `n` samples for each prompt; choices come back grouped by prompt, in order. */
  async complete(prompts: string[], params: SamplingParams): Promise<Sample[][]> {
    const { url, api } = this.next();
    try {
      const response = await api.completions.create({
        model: this.endpoint.model,
        prompt: prompts,
        n: params.n,
        temperature: params.temperature,
        top_p: params.topP,
        max_tokens: params.maxTokens,
        stop: params.stop.length > 0 ? params.stop : null,
        ...(params.seed !== undefined ? { seed: params.seed } : {}),
      });
      const grouped: Sample[][] = prompts.map(() => []);
      for (const choice of response.choices) {
        grouped[Math.floor(choice.index / params.n)]?.push({ text: choice.text, finishReason: choice.finish_reason ?? 'unknown' });
      }
      if (grouped.some((g) => g.length !== params.n)) {
        if (params.n > 1) return this.completeOneByOne(prompts, params);
        throw new TransientError(`policy server ${url} returned ${response.choices.length} choices for ${prompts.length} prompts`);
      }
      return grouped;
    } catch (err) {
      throw classify(err, url);
    }
  }

  /** For servers that ignore `n`: n requests with distinct seeds. */
  private async completeOneByOne(prompts: string[], params: SamplingParams): Promise<Sample[][]> {
    const rounds = await Promise.all(
      Array.from({ length: params.n }, (_, j) =>
        this.complete(prompts, { ...params, n: 1, seed: params.seed === undefined ? undefined : params.seed + j }),
      ),
    );
    return prompts.map((_, i) => rounds.map((round) => round[i]?.[0] as Sample));
  }
}

/** 4xx (but 408 and 429) is the caller's fault and final; the rest may pass on a retry. */
export function classify(err: unknown, url: string): Error {
  if (err instanceof BadInputError || err instanceof TransientError) return err;
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    // The SDK's message starts with the status again ("400 model does not exist").
    const message = `policy server ${url} answered ${err.status}: ${err.message.replace(/^\d{3}\s+/, '')}`;
    const retryable = err.status === 408 || err.status === 429 || err.status >= 500;
    return retryable ? new TransientError(message) : new BadInputError(message);
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new TransientError(`policy server ${url} unreachable: ${reason}`);
}
