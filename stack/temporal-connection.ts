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
  const wantsTls = cfg.tls !== undefined || certPath !== undefined || caPath !== undefined || apiKey !== undefined || env.TEMPORAL_TLS === 'true';
  const tls: TLSConfig | undefined = wantsTls
    ? {
        ...(serverName ? { serverNameOverride: serverName } : {}),
        ...(caPath ? { serverRootCACertificate: readFileSync(caPath) } : {}),
        ...(certPath && keyPath ? { clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) } } : {}),
      }
    : undefined;
  return {
    address: env.TEMPORAL_ADDRESS ?? cfg.address,
    namespace: env.TEMPORAL_NAMESPACE ?? cfg.namespace,
    ...(tls ? { tls } : {}),
    ...(apiKey ? { apiKey } : {}),
  };
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey, connectTimeout: '5s' });
  return new Client({ connection, namespace: target.namespace });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address, tls: target.tls, apiKey: target.apiKey });
}
