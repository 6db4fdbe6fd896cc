// Benchmark: the card's whole RAFT iteration (~40K prompts × 16 samples, every step PRM-scored, select, SFT, serve,
// evaluate on GSM8K test + MATH500) and an ER-PRM labeling run, through the real CLI, the real workflows, a real
// Temporal dev server and a real worker (`prm-raft dev up`), against simulated 7B servers on 1, 2, 4 and 8 simulated
// H100s (bench/sim/), on a clock compressed so that each run takes minutes here. Not a test: it prints tables.
// Usage: node dist/bench/paper-scale.js [--gpus 1,2,4,8] [--sim bench/paper-scale.yaml] [--target-seconds 150] [--label-target-seconds 30]
//        [--label-problems 375] [--label-solutions 1] [--compression X] [--workers 2] [--limit N] [--skip-label] [--skip-raft] [--out DIR] [--keep]
import { Client, Connection } from '@temporalio/client';
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../clients/ports.js';
import { PYTHON, ROOT } from './harness.js';
import { loadSimConfig, type SimConfig } from './sim/config.js';
import { loadShapes, meanTokens, type Shape } from './sim/lengths.js';
import { chooseCompression, decodeTokensPerSecond, idealOverlapSeconds, mergeIntervals, sftSeconds, splitGpus, type GpuSplit, type Interval } from './sim/model.js';
import { activityWindows, hms, historyVerdict, pct, simulatedSeconds, stageBusy, type HistoryEvent, type Stage } from './sim/report.js';
import { markdownTable as gridTable } from '../report/markdown.js';

const { values } = parseArgs({
  options: {
    gpus: { type: 'string', default: '1,2,4,8' },
    sim: { type: 'string', default: join(ROOT, 'bench/paper-scale.yaml') },
    'target-seconds': { type: 'string', default: '150' },
    'label-solutions': { type: 'string', default: '1' },
    'label-problems': { type: 'string', default: '375' },
    'label-target-seconds': { type: 'string', default: '30' },
    /** A smoke run: at most this many prompts of each prompt and evaluation set. */
    limit: { type: 'string' },
    compression: { type: 'string' },
    /** Worker processes on the cpu queue (dev up's one, plus cpu-only ones): one worker's thread is the first
     * limit on how fast the clock can run here, as it would be for a user at this scale. */
    workers: { type: 'string', default: '2' },
    'skip-label': { type: 'boolean', default: false },
    'skip-raft': { type: 'boolean', default: false },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** Print the tables of earlier runs' results.json files (comma-separated), merged, and run nothing. */
    report: { type: 'string' },
  },
});

const CLI = join(ROOT, 'bin/prm-raft.js');
const N_SAMPLES = 16;
const MAX_TOKENS = 1024;
const PAPER_SOLUTIONS = 15;
const COMPLETIONS = 16;
const SFT_REAL_SECONDS = 20;
/** MATH train (7,500) + GSM8K train (7,473): the card's labeling set. */
const FULL_LABEL_PROBLEMS = 14_973;

// ------------------------------------------------------------------------------------------------- the data

interface BenchProblem {
  id: string;
  question: string;
  solution: string;
  answer: string;
}

/** Real questions (GSM8K train / test, MATH500), tagged with their kind and a reference answer the stub can hit. */
function problems(kind: 'gsm8k' | 'math', questions: readonly string[], count: number, prefix: string): BenchProblem[] {
  return Array.from({ length: count }, (_, i) => {
    const answer = String((i * 37) % 1000);
    // The id in the tag keeps a question that is reused (MATH500's for MATH train) from hitting another's prefix cache.
    return { id: `${prefix}-${i}`, question: `[${kind} #${answer} ${prefix}-${i}] ${questions[i % questions.length]}`, solution: `#### ${answer}`, answer };
  });
}

async function writeData(dir: string) {
  await mkdir(dir, { recursive: true });
  const read = (path: string, field: string) =>
    readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => String((JSON.parse(l) as Record<string, unknown>)[field]));
  const shared = join(ROOT, '../shared/data');
  const gsmTrain = read(join(shared, 'gsm8k/train.jsonl'), 'question');
  const gsmTest = read(join(shared, 'gsm8k/test.jsonl'), 'question');
  const math500 = read(join(shared, 'math500/test.jsonl'), 'problem');
  // MATH train (7.5K) and OpenMathInstruct-2 are not on this machine: their prompts are MATH500's and GSM8K's
  // questions again; only the lengths matter to the simulation.
  const sets: Record<string, BenchProblem[]> = {
    'math-train': problems('math', math500, 7500, 'mt'),
    'gsm8k-train': problems('gsm8k', gsmTrain, gsmTrain.length, 'gt'),
    omi2: [...problems('math', math500, 12_500, 'om'), ...problems('gsm8k', gsmTrain, 12_500, 'og')],
    'gsm8k-test': problems('gsm8k', gsmTest, gsmTest.length, 'ge'),
    math500: problems('math', math500, math500.length, 'me'),
  };
  for (const [name, rows] of Object.entries(sets)) await writeFile(join(dir, `${name}.jsonl`), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return Object.fromEntries(Object.entries(sets).map(([k, v]) => [k, { path: join(dir, `${k}.jsonl`), count: v.length, math: v.filter((p) => p.question.startsWith('[math')).length }]));
}

// ------------------------------------------------------------------------------------------------- predicted work

/** GPU-seconds the policy and the PRM need for the iteration's sampling (+ the evaluation before) and scoring. */
function predictWork(sim: SimConfig, shapes: Record<'gsm8k' | 'math', Shape[]>, data: Awaited<ReturnType<typeof writeData>>) {
  const capped = (s: Shape[]) => meanTokens(s.map((sh) => (sh.reduce((a, b) => a + b, 0) > MAX_TOKENS ? [MAX_TOKENS] : sh)));
  const out = { gsm8k: capped(shapes.gsm8k), math: capped(shapes.math) };
  const q = { gsm8k: 60, math: 76 }; // mean question tokens (SmolLM2 tokenizer; bench/sim/config.ts)
  const peak = decodeTokensPerSecond(sim.policy.maxBatch, sim.policy);
  let policy = 0;
  let prm = 0;
  for (const name of ['math-train', 'gsm8k-train', 'omi2']) {
    const d = data[name]!;
    for (const [kind, count] of [['math', d.math], ['gsm8k', d.count - d.math]] as const) {
      policy += (count * N_SAMPLES * out[kind]) / peak + (count * q[kind]) / sim.policy.prefillTokensPerSecond;
      prm += (count * N_SAMPLES * (q[kind] + out[kind])) / sim.prm.tokensPerSecond + (count * sim.prm.requestOverheadMs) / 1000;
    }
  }
  const evalTokens = data['gsm8k-test']!.count * out.gsm8k + data.math500!.count * out.math;
  // SFT: about one kept response per prompt, prompt and response.
  let sftTokens = 0;
  for (const name of ['math-train', 'gsm8k-train', 'omi2']) {
    const d = data[name]!;
    sftTokens += d.math * (q.math + out.math) + (d.count - d.math) * (q.gsm8k + out.gsm8k);
  }
  return { policy, prm, evalTokens, sftTokens, meanOutput: out, peakDecode: peak };
}

type Work = ReturnType<typeof predictWork> & { label: { policy: number } };

// ------------------------------------------------------------------------------------------------- one GPU count

interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
}
function startProc(args: string[], log: string): Proc {
  const stderr = openSync(log, 'a');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', stderr], env: { ...process.env } });
  closeSync(stderr); // the child holds its own copy
  return { child, exited: new Promise((r) => child.once('exit', () => r())) };
}
async function stopProc(proc: Proc): Promise<void> {
  proc.child.kill('SIGTERM');
  await proc.exited;
}

async function cli(args: string[], logBase: string): Promise<{ exitCode: number; stdout: string; stderr: string; peakKiB: number | null }> {
  const rssFile = `${logBase}.rss`;
  const r = await execa('/usr/bin/time', ['-f', '%M', '-o', rssFile, process.execPath, CLI, ...args], { cwd: ROOT, reject: false, timeout: 3_600_000 });
  await writeFile(`${logBase}.out`, String(r.stdout));
  await writeFile(`${logBase}.err`, String(r.stderr));
  const peak = existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1)) : NaN;
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), peakKiB: Number.isFinite(peak) ? peak : null };
}

function procStatusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function history(client: Client, workflowId: string): Promise<{ events: HistoryEvent[]; length: number; bytes: number | null }> {
  const handle = client.workflow.getHandle(workflowId);
  const [h, d] = await Promise.all([handle.fetchHistory(), handle.describe()]);
  const events: HistoryEvent[] = (h.events ?? []).map((e) => {
    const t = e.eventTime!;
    const time = Number(t.seconds) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
    const closed = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    return {
      id: Number(e.eventId),
      time,
      ...(e.activityTaskScheduledEventAttributes ? { scheduled: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?' } : {}),
      ...(closed ? { closesActivity: Number(closed.scheduledEventId) } : {}),
    };
  });
  return { events, length: d.historyLength, bytes: d.historySize ?? null };
}

interface LatencyStats {
  count: number;
  max: number;
  over300: number;
  over600: number;
}
/** The slowest request (simulated seconds) and how many passed the clients' timeouts (policy 600 s, PRM 300 s). */
function latencies(stats: { policy: Array<{ latency: LatencyStats }>; prm: Array<{ latency: LatencyStats }> }) {
  const of = (xs: Array<{ latency: LatencyStats }>, over: 'over300' | 'over600') => ({
    max: Math.max(0, ...xs.map((x) => x.latency.max)),
    overTimeout: xs.reduce((n, x) => n + x.latency[over], 0),
    requests: xs.reduce((n, x) => n + x.latency.count, 0),
  });
  return { policy: of(stats.policy, 'over600'), prm: of(stats.prm, 'over300') };
}

const span = (events: HistoryEvent[]) => ({ start: events[0]!.time, end: events[events.length - 1]!.time });
const startedId = (stderr: string, type: string) => new RegExp(`started ${type} (\\S+)`).exec(stderr)?.[1];

interface GpuRunResult {
  gpus: number;
  /** Worker processes on the cpu queue. */
  workers: number;
  split: GpuSplit;
  compression: number;
  sftCompression: number;
  labelCompression: number;
  load: { before: number[]; after: number[] };
  raft?: {
    ok: boolean;
    error?: string;
    stages: Array<{ name: string; start: number; end: number; realSeconds: number; simSeconds: number; gpu: boolean; meanBusy: number; perGpuBusy: number[] }>;
    totalSimSeconds: number;
    totalRealSeconds: number;
    scoringTailSimSeconds: number;
    overallBusy: number[];
    histories: Array<{ id: string; events: number; bytes: number | null; verdict: string }>;
    cliPeakMiB: number | null;
    workerPeakMiB: number | null;
    workerEndMiB: number | null;
    prefixHitShare: number;
    latency: ReturnType<typeof latencies>;
    sftSteps?: number;
  };
  label?: {
    ok: boolean;
    error?: string;
    solutions: number;
    problems: number;
    realSeconds: number;
    simSeconds: number;
    extrapolatedSimSeconds: number;
    meanBusy: number;
    perGpuBusy: number[];
    history: { events: number; bytes: number | null; verdict: string; shards: number };
    completions: number | null;
    prefixHitShare: number;
    latency: ReturnType<typeof latencies>;
    cliPeakMiB: number | null;
    workerPeakMiB: number | null;
  };
}

async function runGpus(gpus: number, sim: SimConfig, work: Work, data: Awaited<ReturnType<typeof writeData>>, out: string): Promise<GpuRunResult> {
  const split = splitGpus(gpus, work.policy, work.prm);
  const ideal = idealOverlapSeconds(split, work.policy, work.prm);
  const compression = values.compression ? Number(values.compression) : chooseCompression(ideal, Number(values['target-seconds']));
  // The SFT stand-in runs nothing but heartbeats meanwhile: its own, faster clock (~SFT_REAL_SECONDS here) cannot
  // let the orchestrator's overhead pass for GPU time, and saves minutes per GPU count.
  const sftCompression = Math.max(compression, chooseCompression(sftSeconds(work.sftTokens, 3, gpus, sim.sft), SFT_REAL_SECONDS));
  const dir = join(out, `gpus-${gpus}`);
  const statsDir = join(dir, 'stats');
  await mkdir(statsDir, { recursive: true });
  const runtimePath = join(dir, 'runtime.json');
  await writeFile(runtimePath, JSON.stringify({ sim, compression }));
  const sftRuntimePath = join(dir, 'sft-runtime.json');
  await writeFile(sftRuntimePath, JSON.stringify({ sim, compression: sftCompression }));
  const policyGpus = split.shared ? [0] : Array.from({ length: split.policy }, (_, i) => i);
  const prmGpus = split.shared ? [0] : Array.from({ length: split.prm }, (_, i) => split.policy + i);
  const policyPorts = await Promise.all(policyGpus.map(() => freePort()));
  const prmPorts = await Promise.all(prmGpus.map(() => freePort()));
  const [temporalPort, uiPort] = [await freePort(), await freePort()];
  // Labeling needs no PRM: its own simulated GPUs, every one a policy replica, on a clock of its own.
  const labelGpus = Array.from({ length: gpus }, (_, i) => i);
  const labelRuntimePath = join(dir, 'label-runtime.json');
  const labelCompression = values.compression
    ? Number(values.compression)
    : chooseCompression(work.label.policy / gpus, Number(values['label-target-seconds']));
  await writeFile(labelRuntimePath, JSON.stringify({ sim, compression: labelCompression }));
  const startCluster = (name: string, runtime: string, args: string[]) =>
    startProc([join(ROOT, 'dist/bench/sim/cluster.js'), '--runtime', runtime, '--stats', join(statsDir, `${name}.json`), ...args], join(dir, `${name}.log`));
  let cluster: Proc | null = values['skip-raft']
    ? null
    : startCluster('cluster', runtimePath, [
        '--policy-ports', policyPorts.join(','), '--policy-gpus', policyGpus.join(','), '--model', 'sim-7b',
        '--prm-ports', prmPorts.join(','), '--prm-gpus', prmGpus.join(','), '--prm-model', 'sim-prm-7b',
      ]);
  const base = join(dir, 'base-model');
  await mkdir(base, { recursive: true });
  await writeFile(join(base, 'config.json'), '{"simulated": true}\n');
  const limit = values.limit ? `, limit: ${Number(values.limit)}` : '';
  const ds = (name: string) => `    - { name: ${name}, source: tinymath, path: ${data[name]!.path}${limit} }`;
  const node = process.execPath;
  const labelSolutions = Number(values['label-solutions']);
  const labelLimit = `, limit: ${Number(values['label-problems'])}`;
  const fullLabelProblems = data['math-train']!.count + data['gsm8k-train']!.count;
  const labelProblems = Math.min(data['math-train']!.count, Number(values['label-problems'])) + Math.min(data['gsm8k-train']!.count, Number(values['label-problems']));
  // The paper configs' settings (configs/paper/mistral-metamath-7b-{raft,label}.yaml) with the simulators' URLs and commands.
  const configOf = (name: string, urls: number[]) => `name: ${name}
temporal:
  address: 127.0.0.1:${temporalPort}
  taskQueues: { cpu: sim-cpu-${temporalPort}, gpu: sim-gpu-${temporalPort} }
  dev: { port: ${temporalPort}, uiPort: ${uiPort}, stateDir: ${join(dir, 'state')}, temporalBin: ${join(ROOT, 'python-sft/.venv/bin/temporal')} }
store: { root: ${join(dir, 'store')} }
python: ${PYTHON}
policy:
  model: sim-7b
  baseUrls: [${urls.map((p) => `http://127.0.0.1:${p}/v1`).join(', ')}]
  checkpoint: ${base}
  maxConcurrency: 64
  requestTimeoutSeconds: 600
prompt: { preset: tinymath }
sampling:
  n: ${N_SAMPLES}
  temperature: 1.0
  maxTokens: ${MAX_TOKENS}
  shardSize: 500
  maxShardsInFlight: 16
  datasets:
${ds('math-train')}
${ds('gsm8k-train')}
${ds('omi2')}
steps: { by: newline }
prm:
  model: sim-prm-7b
  baseUrls: [${prmPorts.map((p) => `http://127.0.0.1:${p}`).join(', ')}]
  aggregation: min
  maxConcurrency: 16
selection: { mode: prm, dropNoAnswer: true, dropTruncated: true }
sft:
  command: [${node}, ${join(ROOT, 'dist/bench/sim/sft-job.js')}, --config, "{config}", --runtime, ${sftRuntimePath}, --gpus, "${gpus}", --stats, ${statsDir}]
  epochs: 3
  learningRate: 0.000002
  perDeviceBatchSize: 4
  gradientAccumulationSteps: 4
  maxLength: 1536
  bf16: true
  gradientCheckpointing: true
  saveSteps: 200
  timeoutHours: 48
serving:
  command: [${node}, ${join(ROOT, 'dist/bench/sim/cluster.js')}, --runtime, ${runtimePath}, --stats, "${statsDir}/served-{port}.json", --policy-ports, "{port}", --policy-gpus, "0", --model, "{model}", --startup]
  startupTimeoutSeconds: 1200
evaluation:
  maxTokens: ${MAX_TOKENS}
  shardSize: 200
  maxShardsInFlight: 8
  datasets:
${ds('gsm8k-test')}
${ds('math500')}
labeling:
  solutions: ${labelSolutions}
  completions: ${COMPLETIONS}
  temperature: 1.0
  maxTokens: ${MAX_TOKENS}
  shardSize: 20
  maxShardsInFlight: 16
  datasets:
    - { name: math-train, source: tinymath, path: ${data['math-train']!.path}${labelLimit} }
    - { name: gsm8k-train, source: tinymath, path: ${data['gsm8k-train']!.path}${labelLimit} }
grader:
  workers: 2
`;
  const configPath = join(dir, 'config.yaml');
  await writeFile(configPath, configOf(`paper-sim-${gpus}`, policyPorts));
  const labelConfigPath = join(dir, 'config-label.yaml');
  const workers = Math.max(1, Number(values.workers));
  const result: GpuRunResult = { gpus, workers, split, compression, sftCompression, labelCompression, load: { before: loadavg(), after: [] } };
  const say = (line: string) => process.stderr.write(`[${gpus} GPU${gpus > 1 ? 's' : ''}] ${line}\n`);
  say(`split policy ${split.shared ? '1 (shared)' : split.policy} / PRM ${split.shared ? '1 (shared)' : split.prm}, compression ${compression}x (SFT ${sftCompression}x), load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const up = await cli(['dev', 'up', '--config', configPath], join(dir, 'dev-up'));
  if (up.exitCode !== 0) throw new Error(`dev up failed: ${up.stderr}`);
  const extraWorkers = Array.from({ length: workers - 1 }, (_, i) =>
    startProc([CLI, 'worker', '--config', configPath, '--queues', 'cpu'], join(dir, `worker-${i + 2}.log`)),
  );
  const workerPids = [
    Number((JSON.parse(readFileSync(join(dir, 'state', 'pids', 'worker.json'), 'utf8')) as { pid: number }).pid),
    ...extraWorkers.map((w) => w.child.pid!),
  ];
  /** The largest worker's VmHWM / VmRSS. */
  const workerKiB = (field: 'VmHWM' | 'VmRSS') => {
    const kib = workerPids.map((pid) => procStatusKiB(pid, field)).filter((x): x is number => x !== null);
    return kib.length > 0 ? Math.max(...kib) : null;
  };
  const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  const client = new Client({ connection });
  const clusterStats = (name = 'cluster') =>
    JSON.parse(readFileSync(join(statsDir, `${name}.json`), 'utf8')) as {
      gpus: Array<{ id: number; busy: Interval[] }>;
      policy: Array<{ promptTokens: number; cachedPromptTokens: number; latency: LatencyStats }>;
      prm: Array<{ latency: LatencyStats }>;
    };
  const hitShare = (before: { promptTokens: number; cachedPromptTokens: number }[] | undefined, after: { promptTokens: number; cachedPromptTokens: number }[]) => {
    const sum = (xs: typeof after | undefined, k: 'promptTokens' | 'cachedPromptTokens') => (xs ?? []).reduce((n, x) => n + x[k], 0);
    const p = sum(after, 'promptTokens') - sum(before, 'promptTokens');
    return p > 0 ? (sum(after, 'cachedPromptTokens') - sum(before, 'cachedPromptTokens')) / p : 0;
  };
  try {
    /** Busy intervals per GPU: the cluster's, the servers the iteration started (GPU 0), the SFT jobs (all GPUs). */
    const perGpu = (): Interval[][] => {
      const gpusBusy: Interval[][] = Array.from({ length: gpus }, () => []);
      for (const f of readdirSync(statsDir)) {
        if (!f.endsWith('.json')) continue;
        const s = JSON.parse(readFileSync(join(statsDir, f), 'utf8')) as { gpus: Array<{ id: number; busy: Interval[] }> | number[]; busy?: Interval[] };
        if (f.startsWith('served-') || f.startsWith('cluster')) for (const g of s.gpus as Array<{ id: number; busy: Interval[] }>) gpusBusy[g.id]!.push(...g.busy);
        if (f.startsWith('sft-')) for (const id of s.gpus as number[]) gpusBusy[id]!.push(...(s.busy ?? []));
      }
      return gpusBusy.map((x) => mergeIntervals(x));
    };

    if (!values['skip-raft']) {
      await new Promise((r) => setTimeout(r, 2500));
      const before = clusterStats().policy;
      say('RAFT iteration: prm-raft iterate');
      const run = await cli(['iterate', '--config', configPath, '--json'], join(dir, 'iterate'));
      const id = startedId(run.stderr, 'raftIteration');
      const workerPeak = workerKiB('VmHWM');
      const workerEnd = workerKiB('VmRSS');
      await new Promise((r) => setTimeout(r, 2500)); // the stats files' next write
      if (!id) throw new Error(`iterate did not start: ${run.stderr.slice(-2000)}`);
      const main = await history(client, id);
      const beforeEval = await history(client, `${id}-before`).catch(() => null);
      const afterEval = await history(client, `${id}-after`).catch(() => null);
      const w = activityWindows(main.events);
      const run0 = span(main.events);
      const sample = w.get('sampleShard');
      const score = w.get('scoreShard');
      const select = w.get('selectResponses');
      const sft = w.get('runSft');
      const serves = main.events.filter((e) => e.scheduled === 'startPolicyServer');
      const serve = w.get('startPolicyServer');
      const stages: Stage[] = [];
      if (sample && score && select && sft && serve && afterEval) {
        const afterSpan = span(afterEval.events);
        stages.push(
          { name: 'prepare, check servers', start: run0.start, end: sample.start, compression: 1 },
          { name: 'sample + score (eval before beside)', start: sample.start, end: Math.max(score.end, beforeEval ? span(beforeEval.events).end : 0), compression },
          { name: 'select', start: select.start, end: select.end, compression: 1 },
          { name: 'SFT', start: sft.start, end: sft.end, compression: sftCompression },
          { name: 'serve new policy', start: serves[serves.length - 1]!.time, end: serve.end, compression },
          { name: 'evaluate after', start: afterSpan.start, end: afterSpan.end, compression },
          { name: 'compare, summary', start: afterSpan.end, end: run0.end, compression: 1 },
        );
      }
      const busy = stageBusy(stages, perGpu(), run0);
      const gaps = stages.slice(1).reduce((n, s, i) => n + Math.max(0, s.start - stages[i]!.end), 0) / 1000;
      const histories = [{ id, h: main }, ...(beforeEval ? [{ id: `${id}-before`, h: beforeEval }] : []), ...(afterEval ? [{ id: `${id}-after`, h: afterEval }] : [])];
      const sftResult = run.exitCode === 0 ? (JSON.parse(run.stdout) as { sft?: { steps?: number } }).sft : undefined;
      result.raft = {
        ok: run.exitCode === 0,
        ...(run.exitCode !== 0 ? { error: run.stderr.slice(-1500) } : {}),
        stages: stages.map((s, i) => ({ name: s.name, start: s.start, end: s.end, realSeconds: (s.end - s.start) / 1000, simSeconds: simulatedSeconds(s), gpu: s.compression > 1, meanBusy: busy.stages[i]!.meanBusy, perGpuBusy: busy.stages[i]!.perGpu })),
        totalSimSeconds: stages.reduce((n, s) => n + simulatedSeconds(s), 0) + gaps,
        totalRealSeconds: (run0.end - run0.start) / 1000,
        scoringTailSimSeconds: sample && score ? (Math.max(0, score.end - sample.end) / 1000) * compression : 0,
        overallBusy: busy.overall,
        histories: histories.map(({ id: hid, h }) => ({ id: hid, events: h.length, bytes: h.bytes, verdict: historyVerdict(h.length, h.bytes ?? 0) })),
        cliPeakMiB: run.peakKiB !== null ? Math.round(run.peakKiB / 1024) : null,
        workerPeakMiB: workerPeak !== null ? Math.round(workerPeak / 1024) : null,
        workerEndMiB: workerEnd !== null ? Math.round(workerEnd / 1024) : null,
        prefixHitShare: hitShare(before, clusterStats().policy),
        latency: latencies(clusterStats()),
        ...(sftResult?.steps !== undefined ? { sftSteps: sftResult.steps } : {}),
      };
      say(`RAFT ${run.exitCode === 0 ? 'done' : 'FAILED'} in ${result.raft.totalRealSeconds.toFixed(0)} s real, ${hms(result.raft.totalSimSeconds)} simulated`);
      await stopProc(cluster!);
      cluster = null;
    }

    if (!values['skip-label']) try {
      // Ports taken now, not at the start: a port free 15 minutes ago may be a served policy's by now.
      const labelPorts = await Promise.all(labelGpus.map(() => freePort()));
      await writeFile(labelConfigPath, configOf(`paper-sim-label-${gpus}`, labelPorts));
      cluster = startCluster('cluster-label', labelRuntimePath, ['--policy-ports', labelPorts.join(','), '--policy-gpus', labelGpus.join(','), '--model', 'sim-7b']);
      await new Promise((r) => setTimeout(r, 2500));
      say(`labeling: prm-raft label (${labelProblems} problems x ${labelSolutions} solution(s), ${COMPLETIONS} completions per step; ${gpus} policy replicas, compression ${labelCompression}x)`);
      const run = await cli(['label', '--config', labelConfigPath, '--json'], join(dir, 'label'));
      const id = startedId(run.stderr, 'labelPrmData');
      const workerPeak = workerKiB('VmHWM');
      await new Promise((r) => setTimeout(r, 2500));
      if (!id) throw new Error(`label did not start: ${run.stderr.slice(-2000)}`);
      const h = await history(client, id);
      const w = activityWindows(h.events).get('labelShard');
      const stage: Stage = { name: 'label', start: w?.start ?? 0, end: w?.end ?? 0, compression: labelCompression };
      const busy = stageBusy([stage], perGpu(), span(h.events));
      const summary = run.exitCode === 0 ? (JSON.parse(run.stdout) as { completions?: number }) : null;
      const sim = simulatedSeconds(stage);
      result.label = {
        ok: run.exitCode === 0,
        ...(run.exitCode !== 0 ? { error: run.stderr.slice(-1500) } : {}),
        solutions: labelSolutions,
        realSeconds: (stage.end - stage.start) / 1000,
        simSeconds: sim,
        problems: labelProblems,
        extrapolatedSimSeconds: sim * ((PAPER_SOLUTIONS / labelSolutions) * (fullLabelProblems / labelProblems)),
        meanBusy: busy.stages[0]!.meanBusy,
        perGpuBusy: busy.stages[0]!.perGpu,
        history: { events: h.length, bytes: h.bytes, verdict: historyVerdict(h.length, h.bytes ?? 0), shards: w?.count ?? 0 },
        completions: summary?.completions ?? null,
        prefixHitShare: hitShare(undefined, clusterStats('cluster-label').policy),
        latency: latencies(clusterStats('cluster-label')),
        cliPeakMiB: run.peakKiB !== null ? Math.round(run.peakKiB / 1024) : null,
        workerPeakMiB: workerPeak !== null ? Math.round(workerPeak / 1024) : null,
      };
      say(`labeling ${run.exitCode === 0 ? 'done' : 'FAILED'} in ${result.label.realSeconds.toFixed(0)} s real, ${hms(sim)} simulated`);
    } catch (err) {
      // The iteration's numbers are kept; the labeling run's failure is reported beside them.
      say(`labeling FAILED: ${(err as Error).message}`);
    }
  } finally {
    result.load.after = loadavg();
    await connection.close().catch(() => undefined);
    await Promise.all(extraWorkers.map(stopProc));
    await cli(['dev', 'down', '--config', configPath], join(dir, 'dev-down'));
    if (cluster) await stopProc(cluster);
  }
  return result;
}

// ------------------------------------------------------------------------------------------------- the tables

/** The report's Markdown table, every column left-aligned. */
const markdownTable = (header: readonly string[], rows: string[][]) => gridTable({ columns: header.map((label) => ({ label, align: 'left' as const })), rows });

function tables(results: GpuRunResult[], work: Work): string {
  const out: string[] = [];
  const load = (r: GpuRunResult) => `${r.load.before[0]!.toFixed(1)}→${r.load.after[0]!.toFixed(1)}`;
  const raft = results.filter((r) => r.raft);
  if (raft.length > 0) {
    const names = raft[0]!.raft!.stages.map((s) => s.name);
    out.push('RAFT iteration, simulated wall-clock per stage (GPU stages compressed; CPU stages as measured here), mean GPU busy share in brackets');
    out.push(
      markdownTable(
        ['GPUs (policy/PRM)', 'compression', ...names, 'total', 'SFT waits on scoring', 'real s', 'workers', 'load 1-min'],
        raft.map((r) => [
          `${r.gpus} (${r.split.shared ? 'shared' : `${r.split.policy}/${r.split.prm}`})`,
          `${r.compression}x (SFT ${r.sftCompression}x)`,
          ...r.raft!.stages.map((s) => `${s.gpu ? hms(s.simSeconds) : `${s.realSeconds.toFixed(0)} s`} (${pct(s.meanBusy)})`),
          hms(r.raft!.totalSimSeconds),
          hms(r.raft!.scoringTailSimSeconds),
          r.raft!.totalRealSeconds.toFixed(0),
          String(r.workers ?? 1),
          load(r),
        ]),
      ),
    );
    out.push('\nEach simulated GPU\'s busy share over the whole iteration; histories (events, bytes, against the 10,240-event / 10 MB warning); peak RSS');
    out.push(
      markdownTable(
        ['GPUs', 'busy share per GPU: sample + score', 'whole iteration', 'slowest request: policy / PRM (past timeout)', 'iteration history', 'eval before / after', 'largest worker peak (end)', 'CLI peak', 'ok'],
        raft.map((r) => {
          const [m, b, a] = r.raft!.histories;
          const hs = (h: typeof m) => (h ? `${h.events} ev, ${h.bytes !== null ? `${(h.bytes / 1024).toFixed(0)} KiB` : '?'}` : '-');
          return [
            String(r.gpus),
            (r.raft!.stages.find((s) => s.name.startsWith('sample'))?.perGpuBusy ?? []).map(pct).join(' '),
            r.raft!.overallBusy.map(pct).join(' '),
            `${r.raft!.latency.policy.max.toFixed(0)} s (${r.raft!.latency.policy.overTimeout}) / ${r.raft!.latency.prm.max.toFixed(0)} s (${r.raft!.latency.prm.overTimeout})`,
            `${hs(m)} (${m?.verdict ?? '-'})`,
            `${hs(b)} / ${hs(a)}`,
            `${r.raft!.workerPeakMiB} MiB (${r.raft!.workerEndMiB} MiB)`,
            `${r.raft!.cliPeakMiB} MiB`,
            r.raft!.ok ? 'yes' : 'FAILED',
          ];
        }),
      ),
    );
  }
  const label = results.filter((r) => r.label);
  if (label.length > 0) {
    const l0 = label[0]!.label!;
    out.push(`\nER-PRM labeling: ${l0.problems} problems x ${l0.solutions} solution(s) x ${COMPLETIONS} completions per step were run; the card's ~15K problems x ${PAPER_SOLUTIONS} solutions are extrapolated linearly from the labeling stage's simulated time`);
    out.push(
      markdownTable(
        ['GPUs', 'compression', 'completions run', 'simulated (run)', `extrapolated to 15K x ${PAPER_SOLUTIONS}`, 'mean busy', 'prefix-cache hits', 'slowest request (past 600 s)', 'history', 'worker / CLI peak', 'real s', 'load 1-min'],
        label.map((r) => [
          String(r.gpus),
          `${r.labelCompression}x`,
          String(r.label!.completions ?? '?'),
          hms(r.label!.simSeconds),
          hms(r.label!.extrapolatedSimSeconds),
          pct(r.label!.meanBusy),
          pct(r.label!.prefixHitShare),
          `${r.label!.latency.policy.max.toFixed(0)} s (${r.label!.latency.policy.overTimeout})`,
          `${r.label!.history.events} ev, ${r.label!.history.bytes !== null ? `${(r.label!.history.bytes / 1024).toFixed(0)} KiB` : '?'}, ${r.label!.history.shards} shards (${r.label!.history.verdict}); at 15K problems ~${Math.round((r.label!.history.events * FULL_LABEL_PROBLEMS) / r.label!.problems)} ev`,
          `${r.label!.workerPeakMiB} / ${r.label!.cliPeakMiB} MiB`,
          r.label!.realSeconds.toFixed(0),
          load(r),
        ]),
      ),
    );
  }
  out.push(
    `\nModel: mean response ${work.meanOutput.gsm8k.toFixed(0)} tokens (GSM8K-like), ${work.meanOutput.math.toFixed(0)} (MATH-like); a replica's peak decode ${work.peakDecode.toFixed(0)} tokens/s; ` +
      `sampling needs ${(work.policy / 3600).toFixed(1)} policy GPU-hours, scoring ${(work.prm / 3600).toFixed(1)} PRM GPU-hours; the labeling run ${(work.label.policy / 3600).toFixed(1)} policy GPU-hours.`,
  );
  return out.join('\n');
}

/**
 * Policy GPU-seconds of labeling `problems` problems: `solutions` solutions each, then `COMPLETIONS` completions of
 * every step prefix but the last, each continuing as long as the rest of a solution of that kind.
 */
function predictLabelWork(sim: SimConfig, shapes: Record<'gsm8k' | 'math', Shape[]>, problems: { gsm8k: number; math: number }, solutions: number): number {
  const peak = decodeTokensPerSecond(sim.policy.maxBatch, sim.policy);
  let tokens = 0;
  for (const kind of ['gsm8k', 'math'] as const) {
    const pool = shapes[kind];
    let perSolution = 0;
    for (const sh of pool) {
      const total = Math.min(MAX_TOKENS, sh.reduce((a, b) => a + b, 0));
      let rest = total;
      let completions = 0;
      for (let j = 0; j < sh.length - 1; j += 1) {
        rest -= sh[j]!;
        completions += Math.max(1, rest) * COMPLETIONS;
      }
      perSolution += total + completions;
    }
    tokens += (problems[kind] * solutions * perSolution) / Math.max(1, pool.length);
  }
  return tokens / peak;
}

async function main() {
  if (values.report) {
    const files = values.report.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as { work: Work; results: GpuRunResult[] });
    const results = files.flatMap((f) => f.results).sort((a, b) => a.gpus - b.gpus);
    console.log(tables(results, files[0]!.work));
    return;
  }
  const sim = loadSimConfig(values.sim);
  const out = values.out ?? join(tmpdir(), `prm-raft-paper-scale-${Date.now()}`);
  await mkdir(out, { recursive: true });
  const data = await writeData(join(out, 'data'));
  const shapes = loadShapes(sim.lengths);
  const perSet = Number(values['label-problems']);
  const labelProblems = { math: Math.min(data['math-train']!.count, perSet), gsm8k: Math.min(data['gsm8k-train']!.count, perSet) };
  const work = { ...predictWork(sim, shapes, data), label: { policy: predictLabelWork(sim, shapes, labelProblems, Number(values['label-solutions'])) } };
  const results: GpuRunResult[] = [];
  const t0 = Date.now();
  for (const gpus of values.gpus.split(',').map(Number)) {
    results.push(await runGpus(gpus, sim, work, data, out));
    // A run's store holds every sample (hundreds of MB at full size): gone unless asked to keep it.
    if (!values.keep) await rm(join(out, `gpus-${gpus}`, 'store'), { recursive: true, force: true });
    await writeFile(join(out, 'results.json'), JSON.stringify({ sim, work, results }, null, 2));
  }
  const text = tables(results, work);
  await writeFile(join(out, 'tables.md'), text + '\n');
  console.log(text);
  console.log(`\n${((Date.now() - t0) / 60000).toFixed(1)} min here; results in ${out}/results.json`);
  if (!values.keep && !values.out) await rm(join(out, 'data'), { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
