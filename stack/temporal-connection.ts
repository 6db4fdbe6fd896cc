// Connection settings for Temporal: the config, overridden by the standard TEMPORAL_* environment variables.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from '../core/config.js';

export interface TemporalTarget {
  address: string;
  namespace: string;
  tls?: TLSConfig;
  apiKey?: string;
  /** What turned TLS on, for a failed connection to say. */
  tlsBecause?: string[];
}

export function resolveTemporalTarget(cfg: TemporalConfig, env: NodeJS.ProcessEnv = process.env): TemporalTarget {
  const certPath = env.TEMPORAL_TLS_CLIENT_CERT_PATH ?? cfg.tls?.clientCertPath;
  const keyPath = env.TEMPORAL_TLS_CLIENT_KEY_PATH ?? cfg.tls?.clientKeyPath;
  const caPath = env.TEMPORAL_TLS_SERVER_CA_CERT_PATH ?? cfg.tls?.serverRootCaCertPath;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME ?? cfg.tls?.serverName;
  const apiKey = env.TEMPORAL_API_KEY ?? (cfg.apiKeyEnv ? env[cfg.apiKeyEnv] : undefined);
  if ((certPath === undefined) !== (keyPath === undefined)) {
    throw new Error('temporal.tls: give both clientCertPath and clientKeyPath (or TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH), or neither');
  }
  const tlsBecause = [
    cfg.tls !== undefined && 'the config has temporal.tls',
    env.TEMPORAL_TLS_CLIENT_CERT_PATH !== undefined && 'TEMPORAL_TLS_CLIENT_CERT_PATH is set',
    env.TEMPORAL_TLS_SERVER_CA_CERT_PATH !== undefined && 'TEMPORAL_TLS_SERVER_CA_CERT_PATH is set',
    // An API key is a secret: it is only sent over TLS (Temporal's own CLI does the same).
    env.TEMPORAL_API_KEY !== undefined && 'TEMPORAL_API_KEY is set (an API key is only sent over TLS)',
    env.TEMPORAL_API_KEY === undefined && apiKey !== undefined && `${cfg.apiKeyEnv} (temporal.apiKeyEnv) is set (an API key is only sent over TLS)`,
    env.TEMPORAL_TLS === 'true' && 'TEMPORAL_TLS is true',
  ].filter((why): why is string => why !== false);
  const tls: TLSConfig | undefined = tlsBecause.length > 0
    ? {
        ...(serverName ? { serverNameOverride: serverName } : {}),
        ...(caPath ? { serverRootCACertificate: readFileSync(caPath) } : {}),
        ...(certPath && keyPath ? { clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) } } : {}),
      }
    : undefined;
  return {
    address: env.TEMPORAL_ADDRESS ?? cfg.address,
    namespace: env.TEMPORAL_NAMESPACE ?? cfg.namespace,
    ...(tls ? { tls, tlsBecause } : {}),
    ...(apiKey ? { apiKey } : {}),
  };
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey, connectTimeout: '5s' }).catch((err: unknown) => {
    throw connectionError(target, err);
  });
  return new Client({ connection, namespace: target.namespace });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey }).catch((err: unknown) => {
    throw connectionError(target, err);
  });
}

/** The SDK says only "Failed to connect before the deadline": say where, with or without TLS and why, and what to try. */
export function connectionError(target: TemporalTarget, cause: unknown): Error {
  const why = cause instanceof Error ? cause.message : String(cause);
  const how = target.tls
    ? `with TLS, on because ${(target.tlsBecause ?? []).join(' and ')}: a server without TLS (the dev server of \`prm-raft dev up\`) never completes the handshake. For such a server unset what turned TLS on; for a TLS server check TEMPORAL_ADDRESS and the certificates`
    : `without TLS: is the server up at that address (\`prm-raft dev status\` for the embedded one)? A server that wants TLS needs temporal.tls or TEMPORAL_TLS=true`;
  return new Error(`cannot connect to Temporal at ${target.address} (namespace ${target.namespace}) ${how}. (${why})`, { cause });
}
