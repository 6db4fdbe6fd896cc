// The PRM client against scripted servers: the protocol, ORM mode, and every malformed reply named.
import { afterEach, describe, expect, it } from 'vitest';
import { PrmClient, PrmRefusal } from '../../clients/prm.js';
import { BadInputError, TransientError } from '../../core/errors.js';
import { startStubServer, type StubServer } from '../helpers/stub-server.js';

const servers: StubServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type Items = Array<{ id: string; steps: string[] }>;
async function stub(reply: (items: Items) => { status: number; body: unknown }) {
  const s = await startStubServer((_p, body) => reply((body as { items: Items }).items));
  servers.push(s);
  return s;
}
const client = (url: string, kind: 'prm' | 'orm' = 'prm', maxRetries = 0) =>
  new PrmClient({ model: 'p', baseUrls: [url], kind, requestTimeoutSeconds: 5, maxRetries });
const items = [
  { id: 'q1/0', question: 'Q', steps: ['a', 'b'] },
  { id: 'q1/1', question: 'Q', steps: ['c'] },
];

describe('PrmClient', () => {
  it('sends the contract and returns step scores in item order', async () => {
    const s = await stub((its) => ({ status: 200, body: { model: 'p', scores: [...its].reverse().map((i) => ({ id: i.id, step_scores: i.steps.map(() => 0.5) })) } }));
    expect(await client(s.url).score(items)).toEqual([[0.5, 0.5], [0.5]]);
    expect(s.requests[0]).toMatchObject({ path: '/v1/score', body: { model: 'p', items } });
  });

  it('sends the whole response as one step to an ORM', async () => {
    const s = await stub((its) => ({ status: 200, body: { model: 'p', scores: its.map((i) => ({ id: i.id, step_scores: [0.7] })) } }));
    expect(await client(s.url, 'orm').score(items)).toEqual([[0.7], [0.7]]);
    expect((s.requests[0]?.body as { items: Items }).items[0]?.steps).toEqual(['a\nb']);
  });

  it.each([
    ['the wrong number of scores', { model: 'p', scores: [{ id: 'q1/0', step_scores: [0.1] }, { id: 'q1/1', step_scores: [0.1] }] }, /returned 1 scores for item "q1\/0" with 2 steps/],
    ['a score outside [0,1]', { model: 'p', scores: [{ id: 'q1/0', step_scores: [0.1, 1.5] }, { id: 'q1/1', step_scores: [0.1] }] }, /off the protocol: scores\.0\.step_scores\.1/],
    ['a missing item', { model: 'p', scores: [{ id: 'q1/0', step_scores: [0.1, 0.2] }] }, /no scores for item "q1\/1"/],
    ['a body that is not JSON', 'Internal <b>oops</b>', /not JSON/],
  ])('rejects %s as bad input naming the server', async (_what, body, message) => {
    const s = await stub(() => ({ status: 200, body }));
    const err = await client(s.url).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`${s.url}/v1/score`);
  });

  it('passes on the server message of a 4xx, without retrying', async () => {
    const s = await stub(() => ({ status: 400, body: { error: { message: 'item "q1/0" has no steps' } } }));
    const err = await client(s.url, 'prm', 3).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toContain('answered 400: item "q1/0" has no steps');
    expect(s.requests).toHaveLength(1);
  });

  it.each([
    [400, true],
    [413, true],
    [422, true],
    [404, false],
    [401, false],
  ])('calls a %i a refusal of the items (scorable one at a time) only when it is about their content: %s', async (status, refusal) => {
    const s = await stub(() => ({ status, body: { error: { message: 'no' } } }));
    const err = await client(s.url).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err instanceof PrmRefusal).toBe(refusal);
  });

  it('refuses the one item that still answers 507 alone, and not a reply that breaks the protocol', async () => {
    const s = await stub((its) =>
      its.some((i) => i.id === 'q1/0') ? { status: 507, body: { error: { message: 'too large' } } } : { status: 200, body: { model: 'p', scores: its.map((i) => ({ id: i.id, step_scores: [1.5] })) } },
    );
    const refused = await client(s.url).score([items[0]!]).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PrmRefusal);
    expect((refused as Error).message).toContain('item "q1/0" does not fit in one forward pass');
    const broken = await client(s.url).score([items[1]!]).catch((e: unknown) => e);
    expect(broken).toBeInstanceOf(BadInputError);
    expect(broken).not.toBeInstanceOf(PrmRefusal);
  });

  it('retries a 5xx with backoff, then fails transiently', async () => {
    const s = await stub(() => ({ status: 503, body: 'busy' }));
    const err = await client(s.url, 'prm', 2).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(s.requests).toHaveLength(3);
  });
});
