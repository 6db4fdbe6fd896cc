// The policy client against scripted OpenAI-compatible servers: grouping, replicas, n fallback, error classes.
import { afterEach, describe, expect, it } from 'vitest';
import { PolicyClient } from '../../clients/policy.js';
import { BadInputError, TransientError } from '../../core/errors.js';
import { completionBody, startStubServer, type StubServer } from '../helpers/stub-server.js';

const servers: StubServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function stub(handler: Parameters<typeof startStubServer>[0]) {
  const s = await startStubServer(handler);
  servers.push(s);
  return s;
}

function client(urls: string[], maxRetries = 0) {
  return new PolicyClient({ model: 'm', baseUrls: urls.map((u) => `${u}/v1`), requestTimeoutSeconds: 5, maxRetries });
}

const params = { n: 2, temperature: 0.7, topP: 0.9, maxTokens: 32, stop: ['\n\n'], seed: 5 };

describe('PolicyClient', () => {
  it('groups choices by prompt and sends every sampling parameter', async () => {
    const s = await stub((_path, body) => {
      const b = body as { prompt: string[]; n: number };
      return { status: 200, body: completionBody(b.prompt, b.n, (p, j) => `${p}#${j}`) };
    });
    const out = await client([s.url]).complete(['a', 'b'], params);
    expect(out.map((g) => g.map((x) => x.text))).toEqual([['a#0', 'a#1'], ['b#0', 'b#1']]);
    expect(s.requests[0]?.body).toMatchObject({ model: 'm', prompt: ['a', 'b'], n: 2, temperature: 0.7, top_p: 0.9, max_tokens: 32, stop: ['\n\n'], seed: 5 });
  });

  it('spreads requests evenly over replicas', async () => {
    const handler = (_p: string, body: unknown) => ({ status: 200, body: completionBody((body as { prompt: string[] }).prompt, 1, () => 'x') });
    const [a, b] = [await stub(handler), await stub(handler)];
    const c = client([a!.url, b!.url]);
    for (let i = 0; i < 6; i += 1) await c.complete(['q'], { ...params, n: 1 });
    expect([a!.requests.length, b!.requests.length]).toEqual([3, 3]);
  });

  it('falls back to one request per sample with distinct seeds when the server ignores n', async () => {
    const s = await stub((_p, body) => {
      const b = body as { prompt: string[]; seed: number };
      return { status: 200, body: completionBody(b.prompt, 1, () => `seed${b.seed}`) };
    });
    const out = await client([s.url]).complete(['a'], { ...params, n: 3 });
    expect(out[0]?.map((x) => x.text)).toEqual(['seed5', 'seed6', 'seed7']);
  });

  it('turns a 400 into a BadInputError carrying the server message and URL', async () => {
    const s = await stub(() => ({ status: 400, body: { error: { message: 'max_tokens is too large', type: 'BadRequestError', code: 400 } } }));
    const err = await client([s.url]).complete(['a'], params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain('max_tokens is too large');
    expect((err as Error).message).toContain(s.url);
  });

  it('retries a 5xx inside the attempt, then gives a TransientError naming the URL', async () => {
    const s = await stub(() => ({ status: 503, body: { error: { message: 'overloaded' } } }));
    const err = await client([s.url], 2).complete(['a'], params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toMatch(/answered 503/);
    expect(s.requests).toHaveLength(3);
  });

  it('calls an unreachable server transient, naming it', async () => {
    const err = await client(['http://127.0.0.1:9']).complete(['a'], params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toContain('http://127.0.0.1:9/v1 unreachable');
  });

  it('lists served models with their context length and root', async () => {
    const s = await stub(() => ({ status: 200, body: { object: 'list', data: [{ id: 'm', object: 'model', created: 0, owned_by: 'x', max_model_len: 384, root: '/ckpt' }] } }));
    expect(await client([s.url]).listModels()).toEqual([{ url: `${s.url}/v1`, models: [{ id: 'm', maxModelLen: 384, root: '/ckpt' }] }]);
  });
});
