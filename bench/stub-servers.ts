// Stub policy and PRM servers that answer at once, in a process of their own: the benchmark's far side.
// Usage: node dist/bench/stub-servers.js POLICY_PORT PRM_PORT
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const [policyPort, prmPort] = process.argv.slice(2).map(Number);

async function body(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function reply(res: ServerResponse, value: unknown) {
  const text = JSON.stringify(value);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A plausible tinymath answer: three steps and a final line, right or wrong by the seed. */
function answer(i: number): string {
  const a = (i * 7) % 50;
  const b = (i * 13) % 40;
  return `${a} + ${b} = ${a + b}\n${a + b} - 3 = ${a + b - 3}\n#### ${i % 3 === 0 ? a + b - 2 : a + b - 3}`;
}

createServer(async (req, res) => {
  if (req.url === '/v1/models') return reply(res, { object: 'list', data: [{ id: 'stub', object: 'model', created: 0, owned_by: 'bench', root: 'stub' }] });
  const b = (await body(req)) as { prompt: string[]; n: number; seed?: number };
  const choices = b.prompt.flatMap((_, i) => Array.from({ length: b.n }, (_, j) => ({ index: i * b.n + j, text: answer(i + j + (b.seed ?? 0)), finish_reason: 'stop', logprobs: null })));
  reply(res, { id: 'cmpl', object: 'text_completion', created: 0, model: 'stub', choices, usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
}).listen(policyPort, '127.0.0.1');

createServer(async (req, res) => {
  if (req.url === '/v1/models') return reply(res, { object: 'list', data: [{ id: 'stub-prm', object: 'model', root: 'stub-prm' }] });
  if (req.url === '/health') return reply(res, {});
  const b = (await body(req)) as { model: string; items: Array<{ id: string; steps: string[] }> };
  reply(res, { model: b.model, scores: b.items.map((it, k) => ({ id: it.id, step_scores: it.steps.map((_, s) => ((k * 31 + s * 17) % 100) / 100) })) });
}).listen(prmPort, '127.0.0.1');
