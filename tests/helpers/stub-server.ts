// A throwaway HTTP server on loopback for testing one client against scripted answers.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubServer {
  url: string;
  requests: Array<{ path: string; body: unknown }>;
  close(): Promise<void>;
}

export type StubHandler = (path: string, body: unknown) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>;

export async function startStubServer(handler: StubHandler): Promise<StubServer> {
  const requests: StubServer['requests'] = [];
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text ? JSON.parse(text) : null;
    const path = req.url ?? '/';
    requests.push({ path, body });
    const answer = await handler(path, body);
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A vLLM-shaped completions answer: choice i*n+j for prompt i. */
export function completionBody(prompts: string[], n: number, text: (prompt: string, j: number) => string) {
  return {
    id: 'cmpl-1',
    object: 'text_completion',
    created: 0,
    model: 'm',
    choices: prompts.flatMap((p, i) =>
      Array.from({ length: n }, (_, j) => ({ index: i * n + j, text: text(p, j), logprobs: null, finish_reason: 'stop' })),
    ),
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}
