// The embedded stack on this machine: Temporal dev server, local model servers, a worker — started, checked, stopped.
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isTrainedRewardModel, type Config, type PrmConfig } from '../core/config.js';
import { exists, writeFileAtomic } from '../store/files.js';
import { isAlive, startBackground, stopBackground } from '../clients/process.js';
import { here, listRecords, processRegistryDir, recordState, stopAllRecorded } from '../clients/process-registry.js';
import { processCount } from '../core/process-record.js';
import { connectClient } from './temporal-connection.js';

export interface StackPart {
  name: string;
  command: string[];
  /** Returns null when healthy, else why not. */
  health: () => Promise<string | null>;
  url?: string;
}

interface PidRecord {
  name: string;
  pid: number;
  command: string[];
  startedAt: string;
}

export function stackParts(config: Config, configPath: string): StackPart[] {
  const t = config.temporal;
  const state = resolve(t.dev.stateDir);
  const parts: StackPart[] = [
    {
      name: 'temporal',
      command: [
        resolve(t.dev.temporalBin), 'server', 'start-dev',
        '--ip', '127.0.0.1', '--port', String(t.dev.port), '--ui-port', String(t.dev.uiPort),
        '--db-filename', join(state, 'temporal.db'), '--namespace', t.namespace, '--log-level', 'warn',
      ],
      url: `Temporal ${t.namespace}@127.0.0.1:${t.dev.port}, Web UI http://127.0.0.1:${t.dev.uiPort}`,
      health: async () => {
        try {
          const client = await connectClient({ address: `127.0.0.1:${t.dev.port}`, namespace: t.namespace });
          await client.connection.workflowService.describeNamespace({ namespace: t.namespace });
          await client.connection.close();
          return null;
        } catch (err) {
          return (err as Error).message;
        }
      },
    },
  ];
  const local = config.policy.localServer;
  if (local) {
    parts.push({
      name: 'policy',
      command: [
        resolve(config.python), '-m', 'prm_raft.policy_server',
        '--model', resolve(local.checkpoint), '--served-model-name', config.policy.model,
        '--host', '127.0.0.1', '--port', String(local.port),
      ],
      url: `policy "${config.policy.model}" at http://127.0.0.1:${local.port}/v1`,
      health: () => httpHealth(`http://127.0.0.1:${local.port}/health`),
    });
  }
  if (config.prm?.localServer) parts.push(rewardServerPart('prm', config.prm, config.prm.localServer, config.python));
  // The reward models compared by bon and compare: one server each, unless the prm part already serves it.
  for (const model of config.rewardModels ?? []) {
    if (isTrainedRewardModel(model)) continue; // served by the iteration that ranks with it
    const local = model.localServer;
    const same = config.prm?.localServer;
    if (!local || (same && same.port === local.port && resolve(same.checkpoint) === resolve(local.checkpoint))) continue;
    parts.push(rewardServerPart(`rm-${model.name}`, model, local, config.python));
  }
  parts.push({
    name: 'worker',
    command: [process.execPath, resolve('bin/prm-raft.js'), 'worker', '--config', resolve(configPath)],
    url: `worker on task queues ${t.taskQueues.cpu}, ${t.taskQueues.gpu}`,
    health: async () => {
      try {
        const client = await connectClient({ address: `127.0.0.1:${t.dev.port}`, namespace: t.namespace });
        const res = await client.connection.workflowService.describeTaskQueue({
          namespace: t.namespace,
          taskQueue: { name: t.taskQueues.cpu },
          taskQueueType: 1, // workflow
        });
        await client.connection.close();
        return (res.pollers?.length ?? 0) > 0 ? null : 'no worker polling yet';
      } catch (err) {
        return (err as Error).message;
      }
    },
  });
  return parts;
}

/** A local PRM or ORM server (python-sft's prm_server), healthy once its model is loaded. */
function rewardServerPart(name: string, prm: Pick<PrmConfig, 'model' | 'kind'>, local: { checkpoint: string; port: number }, python: string): StackPart {
  return {
    name,
    command: [
      resolve(python), '-m', 'prm_raft.prm_server',
      '--model', resolve(local.checkpoint), '--served-model-name', prm.model,
      '--host', '127.0.0.1', '--port', String(local.port),
    ],
    url: `${prm.kind.toUpperCase()} "${prm.model}" at http://127.0.0.1:${local.port}`,
    health: () => httpHealth(`http://127.0.0.1:${local.port}/health`),
  };
}

async function httpHealth(url: string): Promise<string | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok ? null : `${url} answered ${res.status}`;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  }
}

function pidDir(config: Config) {
  return join(resolve(config.temporal.dev.stateDir), 'pids');
}

async function readPidRecord(config: Config, name: string): Promise<PidRecord | null> {
  const path = join(pidDir(config), `${name}.json`);
  if (!(await exists(path))) return null;
  const record = JSON.parse(await readFile(path, 'utf8')) as PidRecord;
  return (await isSameProcess(record)) ? record : null;
}

/** Alive and still running our command: a recycled pid must never be killed by `down`. */
async function isSameProcess(record: PidRecord): Promise<boolean> {
  if (!isAlive(record.pid)) return false;
  try {
    const cmdline = (await readFile(`/proc/${record.pid}/cmdline`, 'utf8')).split('\0');
    return record.command.every((arg, i) => cmdline[i] === arg);
  } catch {
    return true; // No /proc here: trust the pid.
  }
}

export interface PartStatus {
  name: string;
  pid: number | null;
  healthy: boolean;
  detail: string;
  url?: string;
}

/** Starts every part not already running, in order, each waited on until healthy. */
export async function stackUp(config: Config, configPath: string, log: (line: string) => void, timeoutSeconds = 180): Promise<PartStatus[]> {
  const state = resolve(config.temporal.dev.stateDir);
  await mkdir(join(state, 'logs'), { recursive: true });
  await mkdir(pidDir(config), { recursive: true });
  const out: PartStatus[] = [];
  for (const part of stackParts(config, configPath)) {
    let record = await readPidRecord(config, part.name);
    if (record) {
      log(`${part.name}: already running (pid ${record.pid})`);
    } else {
      const logPath = join(state, 'logs', `${part.name}.log`);
      const [file, ...args] = part.command as [string, ...string[]];
      const pid = startBackground(file, args, logPath, { HF_HUB_OFFLINE: '1' });
      record = { name: part.name, pid, command: part.command, startedAt: new Date().toISOString() };
      await writeFileAtomic(join(pidDir(config), `${part.name}.json`), JSON.stringify(record, null, 2));
      log(`${part.name}: started (pid ${pid}), log ${logPath}`);
    }
    const started = Date.now();
    let why = await part.health();
    while (why !== null) {
      if (!isAlive(record.pid)) {
        throw new Error(`${part.name} exited during start-up: see ${join(state, 'logs', `${part.name}.log`)}`);
      }
      if (Date.now() - started > timeoutSeconds * 1000) {
        throw new Error(`${part.name} not healthy after ${timeoutSeconds}s (${why}): see ${join(state, 'logs', `${part.name}.log`)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
      why = await part.health();
    }
    log(`${part.name}: healthy — ${part.url ?? ''}`);
    out.push({ name: part.name, pid: record.pid, healthy: true, detail: 'healthy', url: part.url });
  }
  return out;
}

export async function stackStatus(config: Config, configPath: string): Promise<PartStatus[]> {
  return Promise.all(
    stackParts(config, configPath).map(async (part) => {
      const record = await readPidRecord(config, part.name);
      const why = await part.health();
      return { name: part.name, pid: record?.pid ?? null, healthy: why === null, detail: why ?? 'healthy', url: part.url };
    }),
  );
}

/** The processes stages started on this machine (SFT and PRM-training jobs, served policies and PRMs) still running. */
export function stageProcesses(config: Config) {
  return listRecords(processRegistryDir(config.store.root))
    .map((r) => r.record)
    .filter((r) => r.host === here().host && recordState(r) !== 'gone');
}

/**
 * Stops what `up` recorded and every process a stage recorded (the worker first, so it starts nothing new, then
 * the stages' processes, then the rest), waits until each is gone, and says how many it stopped.
 */
export async function stackDown(config: Config, log: (line: string) => void): Promise<{ stack: number; stages: number }> {
  const dir = pidDir(config);
  const order = ['worker', 'policy', 'prm', 'temporal'];
  // Reward model servers (rm-<name>) go down with the prm one.
  const rank = (name: string) => order.indexOf(name.startsWith('rm-') ? 'prm' : name);
  const names = (await exists(dir)) ? (await readdir(dir)).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
  names.sort((a, b) => rank(a) - rank(b));
  let stack = 0;
  let stages = 0;
  const stopStages = async () => {
    stages = (await stopAllRecorded(processRegistryDir(config.store.root), log)).length;
  };
  if (!names.includes('worker')) await stopStages();
  for (const name of names) {
    const path = join(dir, `${name}.json`);
    const record = JSON.parse(await readFile(path, 'utf8')) as PidRecord;
    if (await isSameProcess(record)) {
      await stopBackground(record.pid, 15);
      stack += 1;
      log(`${name}: stopped (pid ${record.pid})`);
    } else {
      log(`${name}: was not running`);
    }
    await rm(path, { force: true });
    if (name === 'worker') await stopStages();
  }
  log(`stopped ${processCount(stack)} of the stack and ${processCount(stages)} started by stages`);
  return { stack, stages };
}
