// A failed connection to Temporal names the address, whether TLS was on and why, and what to do.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TemporalConfig } from '../../core/config.js';
import { connectClient, resolveTemporalTarget } from '../../stack/temporal-connection.js';
import { timeSkippingEnv } from '../helpers/temporal.js';

let env: TestWorkflowEnvironment;
let config: TemporalConfig;
beforeAll(async () => {
  env = await timeSkippingEnv();
  config = TemporalConfig.parse({ address: env.address });
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

describe('connectClient', () => {
  it('connects to a plain server without an API key', async () => {
    const client = await connectClient(resolveTemporalTarget(config, {}));
    await client.connection.close();
  });

  it('says that TEMPORAL_API_KEY turned TLS on when a plain server does not answer the handshake', async () => {
    const err = await connectClient(resolveTemporalTarget(config, { TEMPORAL_API_KEY: 'k' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toContain(`cannot connect to Temporal at ${env.address} (namespace default) with TLS, on because TEMPORAL_API_KEY is set`);
    expect(message).toContain('For such a server unset what turned TLS on');
  });

  it('says TLS was off, and what to check, when nothing listens at the address', async () => {
    const err = await connectClient(resolveTemporalTarget({ ...config, address: '127.0.0.1:9' }, {})).catch((e: unknown) => e);
    expect((err as Error).message).toContain('cannot connect to Temporal at 127.0.0.1:9 (namespace default) without TLS: is the server up at that address');
  });
});
