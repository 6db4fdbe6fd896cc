// A process of simulated GPUs: policy replicas and PRM replicas, each on a GPU of its own or sharing one, each on
// its own port; their busy time is written to a stats file every 2 s and at exit. The paper-scale bench starts one
// for the run's external servers, and the iteration starts one (as its serving.command) for each checkpoint it serves.
// Usage: node dist/bench/sim/cluster.js --runtime RUNTIME.json --stats OUT.json
//          [--policy-ports P1,P2 --policy-gpus 0,1 --model NAME] [--prm-ports Q1 --prm-gpus 1 --prm-model NAME] [--startup]
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { SimConfig, type SimRuntime } from './config.js';
import { Gpu, runClock } from './gpus.js';
import { loadShapes } from './lengths.js';
import { policyHandler, PolicyReplica } from './policy-stub.js';
import { prmHandler, PrmReplica } from './prm-stub.js';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string' },
    stats: { type: 'string' },
    'policy-ports': { type: 'string', default: '' },
    'policy-gpus': { type: 'string', default: '' },
    model: { type: 'string', default: 'sim-policy' },
    'prm-ports': { type: 'string', default: '' },
    'prm-gpus': { type: 'string', default: '' },
    'prm-model': { type: 'string', default: 'sim-prm' },
    startup: { type: 'boolean', default: false },
  },
});
const list = (s: string | undefined) => (s ? s.split(',').filter(Boolean).map(Number) : []);
const raw = JSON.parse(readFileSync(values.runtime as string, 'utf8')) as SimRuntime;
const runtime: SimRuntime = { sim: SimConfig.parse(raw.sim), compression: raw.compression };
const { sim, compression } = runtime;
const policyPorts = list(values['policy-ports']);
const policyGpus = list(values['policy-gpus']);
const prmPorts = list(values['prm-ports']);
const prmGpus = list(values['prm-gpus']);
if (policyPorts.length !== policyGpus.length || prmPorts.length !== prmGpus.length) throw new Error('one GPU per port: --policy-gpus / --prm-gpus');

const gpus = new Map<number, Gpu>();
const gpu = (id: number) => gpus.get(id) ?? (gpus.set(id, new Gpu(id)).get(id) as Gpu);
const shapes = policyPorts.length > 0 ? loadShapes(sim.lengths) : { gsm8k: [], math: [] };
const readyAt = values.startup ? Date.now() + (sim.policy.startupSeconds / compression) * 1000 : 0;
const started = Date.now();

const policies = policyPorts.map((port, i) => {
  const replica = new PolicyReplica(sim, shapes, compression);
  gpu(policyGpus[i] as number).tenants.push(replica);
  createServer({ keepAliveTimeout: 5000 }, policyHandler(replica, values.model as string, sim.policy.maxModelLen, readyAt)).listen(port, '127.0.0.1');
  return { port, gpu: policyGpus[i], replica };
});
const prms = prmPorts.map((port, i) => {
  const replica = new PrmReplica(sim, compression);
  gpu(prmGpus[i] as number).tenants.push(replica);
  createServer({ keepAliveTimeout: 5000 }, prmHandler(replica, values['prm-model'] as string)).listen(port, '127.0.0.1');
  return { port, gpu: prmGpus[i], replica };
});
const clock = runClock([...gpus.values()], compression, sim.tickMs);

function writeStats() {
  const out = values.stats as string;
  const stats = {
    pid: process.pid,
    started,
    written: Date.now(),
    compression,
    gpus: [...gpus.values()].map((g) => ({ id: g.id, busy: g.busy })),
    policy: policies.map((p) => ({ port: p.port, gpu: p.gpu, ...p.replica.stats })),
    prm: prms.map((p) => ({ port: p.port, gpu: p.gpu, ...p.replica.stats })),
  };
  writeFileSync(`${out}.tmp`, JSON.stringify(stats));
  renameSync(`${out}.tmp`, out);
}
const timer = setInterval(writeStats, 2000);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    clock.stop();
    clearInterval(timer);
    writeStats();
    process.exit(0);
  });
}
