// The PRM client against a stub speaking vLLM's Pooling API as vLLM's docs and protocol show it
// (https://docs.vllm.ai/en/latest/models/pooling_models/, PoolingResponse in vllm/entrypoints/pooling/pooling/protocol.py),
// for both PRM styles: Qwen2.5-Math-PRM (<extra_0>, [p(wrong), p(right)]) and Math-Shepherd (ки, [p(+), p(-)]).
import { afterEach, describe, expect, it } from 'vitest';
import { checkPrm } from '../../activities/check-prm.js';
import { PrmClient, PrmRefusal } from '../../clients/prm.js';
import { BadInputError, TransientError } from '../../core/errors.js';
import type { VllmPoolingConfig } from '../../core/vllm-pooling.js';
import { startStubServer, type StubServer } from '../helpers/stub-server.js';

const QWEN: VllmPoolingConfig = {
  prompt: '<|im_start|>system\nPlease reason step by step.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n{steps}<|im_end|>\n',
  stepTag: '<extra_0>',
  stepSeparator: '',
  positiveIndex: 1,
};
const SHEPHERD: VllmPoolingConfig = { prompt: '{question} {steps}', stepTag: ' ки', stepSeparator: '\n', positiveIndex: 0 };

const servers: StubServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type PoolingRequest = { model: string; input: string[]; task: string };
/** vLLM's /pooling answer: one output per input, each the probability pairs at its step tags. */
const poolingReply = (model: string, perInput: number[][][]) => ({
  id: 'pool-7f3c',
  object: 'list',
  created: 1733000000,
  model,
  data: perInput.map((data, index) => ({ index, object: 'pooling', data })),
  usage: { prompt_tokens: 311, total_tokens: 311, completion_tokens: 0, prompt_tokens_details: null },
});
async function stub(reply: (req: PoolingRequest) => { status: number; body: unknown }) {
  const s = await startStubServer((path, body) => (path === '/pooling' ? reply(body as PoolingRequest) : { status: 404, body: { detail: 'Not Found' } }));
  servers.push(s);
  return s;
}
const client = (url: string, vllmPooling: VllmPoolingConfig, opts: { kind?: 'prm' | 'orm'; maxRetries?: number; model?: string } = {}) =>
  new PrmClient({ model: opts.model ?? 'qwen25-math-prm-7b', baseUrls: [url], kind: opts.kind ?? 'prm', requestTimeoutSeconds: 5, maxRetries: opts.maxRetries ?? 0, vllmPooling });
const items = [
  { id: 'q1/0', question: 'What is 2+3?', steps: ['2+3 = 5.', 'The answer is 5.'] },
  { id: 'q1/1', question: 'What is 2+3?', steps: ['The answer is 6.'] },
];

describe('PrmClient through vLLM Pooling API', () => {
  it('Qwen2.5-Math-PRM: sends the chat-templated prompts with <extra_0> after each step, takes p(right) per step', async () => {
    const s = await stub((req) => ({ status: 200, body: poolingReply(req.model, [[[0.1, 0.9], [0.3, 0.7]], [[0.95, 0.05]]]) }));
    expect(await client(s.url, QWEN).score(items)).toEqual([[0.9, 0.7], [0.05]]);
    expect(s.requests).toEqual([
      {
        path: '/pooling',
        body: {
          model: 'qwen25-math-prm-7b',
          task: 'token_classify',
          input: [
            '<|im_start|>system\nPlease reason step by step.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n2+3 = 5.<extra_0>The answer is 5.<extra_0><|im_end|>\n',
            '<|im_start|>system\nPlease reason step by step.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\nThe answer is 6.<extra_0><|im_end|>\n',
          ],
        },
      },
    ]);
  });

  it('Math-Shepherd: "question step ки\\nstep ки", takes p(+) per step; outputs matched by index, not by position', async () => {
    const s = await stub((req) => {
      const body = poolingReply(req.model, [[[0.8, 0.2], [0.6, 0.4]], [[0.1, 0.9]]]);
      return { status: 200, body: { ...body, data: [...body.data].reverse() } };
    });
    expect(await client(s.url, SHEPHERD, { model: 'math-shepherd-mistral-7b-prm' }).score(items)).toEqual([[0.8, 0.6], [0.1]]);
    expect(s.requests[0]?.body).toEqual({
      model: 'math-shepherd-mistral-7b-prm',
      task: 'token_classify',
      input: ['What is 2+3? 2+3 = 5. ки\nThe answer is 5. ки', 'What is 2+3? The answer is 6. ки'],
    });
  });

  it('an ORM reads the whole response as one tagged step', async () => {
    const s = await stub((req) => ({ status: 200, body: poolingReply(req.model, req.input.map(() => [[0.25, 0.75]])) }));
    expect(await client(s.url, QWEN, { kind: 'orm' }).score(items)).toEqual([[0.75], [0.75]]);
    expect((s.requests[0]?.body as PoolingRequest).input[0]).toContain('assistant\n2+3 = 5.\nThe answer is 5.<extra_0><|im_end|>');
  });

  const twoOutputs = (first: unknown, second: unknown = [[0.5, 0.5]]) => ({
    ...poolingReply('qwen25-math-prm-7b', []),
    data: [
      { index: 0, object: 'pooling', data: first },
      { index: 1, object: 'pooling', data: second },
    ],
  });
  it.each([
    ['one step score too few', twoOutputs([[0.1, 0.9]]), /\(model "qwen25-math-prm-7b"\) answered 1 step scores for item "q1\/0" with 2 steps: the step tag "<extra_0>"/],
    ['an output missing', { ...twoOutputs([[0.1, 0.9], [0.2, 0.8]]), data: [{ index: 0, object: 'pooling', data: [[0.1, 0.9], [0.2, 0.8]] }] }, /answered 1 outputs for 2 inputs/],
    ['outputs under the wrong indexes', { ...twoOutputs([[0.1, 0.9], [0.2, 0.8]]), data: [0, 2].map((index) => ({ index, object: 'pooling', data: [[0.5, 0.5], [0.5, 0.5]] })) }, /no output for item "q1\/1" \(input 1\)/],
    ['the whole vocabulary per step (no returned_token_ids)', twoOutputs([[0.1, 0.2, 0.7], [0.2, 0.2, 0.6]]), /answered 3 probabilities at step 1 of item "q1\/0", expected 2/],
    ['a probability outside [0, 1] (no softmax)', twoOutputs([[-2.1, 3.4], [0.2, 0.8]]), /off vLLM's Pooling API: data\.0\.data\.0\.0/],
    ['a base64 encoding instead of floats', twoOutputs('AAAAPwAAAD8='), /off vLLM's Pooling API: data\.0\.data/],
    ['a body that is not JSON', 'Internal Server Error', /not JSON/],
  ])('refuses %s as bad input naming the server', async (_what, body, message) => {
    const s = await stub(() => ({ status: 200, body }));
    const err = await client(s.url, QWEN).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`${s.url}/pooling`);
  });

  it.each([
    ['today', { error: { message: "This model's maximum context length is 4096 tokens.", type: 'BadRequestError', param: null, code: 400 } }],
    ['in older vLLM', { object: 'error', message: "This model's maximum context length is 4096 tokens.", type: 'BadRequestError', param: null, code: 400 }],
  ])("passes on vLLM's 400 message (%s form), without retrying, as a refusal of the items (scored alone by a shard)", async (_form, body) => {
    const s = await stub(() => ({ status: 400, body }));
    const err = await client(s.url, QWEN, { maxRetries: 3 }).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrmRefusal);
    expect((err as Error).message).toContain("answered 400: This model's maximum context length is 4096 tokens.");
    expect(s.requests).toHaveLength(1);
  });

  it('retries a 5xx, then fails transiently', async () => {
    const s = await stub(() => ({ status: 500, body: { error: { message: 'EngineCore died', type: 'InternalServerError', param: null, code: 500 } } }));
    const err = await client(s.url, QWEN, { maxRetries: 1 }).score(items).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(s.requests).toHaveLength(2);
  });
});

describe('checkPrm against vLLM', () => {
  it("finds the model in vLLM's /v1/models; the fingerprint tells formattings apart", async () => {
    const s = await startStubServer(() => ({
      status: 200,
      body: {
        object: 'list',
        data: [{ id: 'qwen25-math-prm-7b', object: 'model', created: 1733000000, owned_by: 'vllm', root: 'Qwen/Qwen2.5-Math-PRM-7B', parent: null, max_model_len: 4096, permission: [] }],
      },
    }));
    servers.push(s);
    const endpoint = { model: 'qwen25-math-prm-7b', baseUrls: [s.url], kind: 'prm' as const, aggregation: 'min' as const, maxConcurrency: 1, requestTimeoutSeconds: 5, maxRetries: 0 };
    const plain = (await checkPrm({ prm: endpoint })).fingerprint;
    const qwen = (await checkPrm({ prm: { ...endpoint, vllmPooling: QWEN } })).fingerprint;
    const other = (await checkPrm({ prm: { ...endpoint, vllmPooling: { ...QWEN, stepSeparator: '\n\n' } } })).fingerprint;
    expect(plain).toBe('qwen25-math-prm-7b@Qwen/Qwen2.5-Math-PRM-7B');
    expect(qwen).toMatch(/^qwen25-math-prm-7b@Qwen\/Qwen2\.5-Math-PRM-7B\+vllm-pooling:[0-9a-f]{24}$/);
    expect(other).not.toBe(qwen);
    expect(s.requests.map((r) => r.path)).toEqual(['/v1/models', '/v1/models', '/v1/models']);
  });
});
