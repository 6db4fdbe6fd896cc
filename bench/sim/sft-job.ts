// A stand-in for the SFT job (python-sft/prm_raft/sft.py) that speaks its protocol: `--config job.json` in,
// JSON lines on stdout ({"event":"progress",…}, {"event":"checkpoint",…}, {"event":"done","output":…}), exit 0 done,
// 2 bad config or data; a checkpoint every save_steps that a restarted job resumes from; `final/` appears
// atomically and a job that finds it prints done at once. It "trains" for tokens × epochs ÷ (GPUs × throughput)
// simulated seconds, compressed, and records the interval its GPUs were busy.
// Used as the bench config's sft.command: [node, dist/bench/sim/sft-job.js, --config, "{config}", --runtime, R, --gpus, N, --stats, DIR]
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SimConfig, type SimRuntime } from './config.js';
import { sftSeconds, textTokens } from './model.js';

const emit = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
const bad = (message: string): never => {
  process.stderr.write(`error: ${message}\n`);
  emit('error', { message, retryable: false });
  process.exit(2);
};

/** The planned run: optimizer steps and simulated seconds for the job's data on `gpus` GPUs. */
export function planSft(records: ReadonlyArray<{ prompt: string; completion: string }>, job: { epochs: number; per_device_batch_size: number; gradient_accumulation_steps: number; max_length: number }, gpus: number, sim: SimConfig) {
  const tokens = records.reduce(
    (n, r) => n + Math.min(job.max_length, textTokens(r.prompt, sim.lengths.questionCharsPerToken) + textTokens(r.completion, sim.lengths.charsPerToken)),
    0,
  );
  const perStep = job.per_device_batch_size * job.gradient_accumulation_steps * gpus;
  const steps = Math.max(1, Math.ceil((records.length * job.epochs) / perStep));
  return { tokens, steps, seconds: sftSeconds(tokens, job.epochs, gpus, sim.sft) };
}

async function main() {
  const { values } = parseArgs({ options: { config: { type: 'string' }, runtime: { type: 'string' }, gpus: { type: 'string' }, stats: { type: 'string' } } });
  if (!values.config || !values.runtime || !values.gpus || !values.stats) bad('usage: sft-job --config JOB --runtime R --gpus N --stats DIR');
  let job: Record<string, unknown>;
  try {
    job = JSON.parse(readFileSync(values.config as string, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    return bad(`config ${values.config}: ${(err as Error).message}`);
  }
  for (const key of ['model', 'train_file', 'output_dir']) if (typeof job[key] !== 'string') bad(`config: "${key}" is required`);
  const raw = JSON.parse(readFileSync(values.runtime as string, 'utf8')) as SimRuntime;
  const sim = SimConfig.parse(raw.sim);
  const gpus = Number(values.gpus);
  const out = job.output_dir as string;
  const final = join(out, 'final');
  if (existsSync(final)) {
    emit('done', { output: final, metrics: JSON.parse(readFileSync(join(final, 'metrics.json'), 'utf8')) });
    return;
  }
  if (!existsSync(job.model as string)) bad(`model ${job.model}: not a checkpoint directory`);
  let records: Array<{ prompt: string; completion: string }>;
  try {
    records = readFileSync(job.train_file as string, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { prompt: string; completion: string });
  } catch (err) {
    return bad(`train_file ${job.train_file}: ${(err as Error).message}`);
  }
  if (records.length === 0) bad(`train_file ${job.train_file}: no records`);
  const plan = planSft(
    records,
    {
      epochs: Number(job.epochs ?? 1),
      per_device_batch_size: Number(job.per_device_batch_size ?? 8),
      gradient_accumulation_steps: Number(job.gradient_accumulation_steps ?? 1),
      max_length: Number(job.max_length ?? 1024),
    },
    gpus,
    sim,
  );
  const ckptDir = join(out, 'checkpoints');
  mkdirSync(ckptDir, { recursive: true });
  const resumed = Math.max(0, ...readdirSync(ckptDir).map((d) => Number(/^checkpoint-(\d+)$/.exec(d)?.[1] ?? 0)));
  const saveSteps = Number(job.save_steps ?? 50);
  const startedAt = Date.now();
  const realMs = (simSeconds: number) => (simSeconds / raw.compression) * 1000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Start-up (load and shard the weights), then the steps, then the save; GPUs busy throughout.
  await sleep(realMs(sim.sft.startupSeconds));
  const stepSeconds = (plan.seconds - sim.sft.startupSeconds - sim.sft.saveSeconds) / plan.steps;
  const every = Math.max(1, Math.floor(plan.steps / 100));
  const loss = (s: number) => Number((0.9 * Math.exp(-s / plan.steps) + 0.2).toFixed(4));
  let lossFirst: number | null = null;
  for (let step = resumed + 1; step <= plan.steps; step += 1) {
    await sleep(realMs(stepSeconds));
    if (step % every === 0 || step === plan.steps) {
      lossFirst ??= loss(step);
      emit('progress', { step, total: plan.steps, loss: loss(step) });
    }
    if (step % saveSteps === 0) {
      mkdirSync(join(ckptDir, `checkpoint-${step}`), { recursive: true });
      emit('checkpoint', { step, path: join(ckptDir, `checkpoint-${step}`) });
    }
  }
  await sleep(realMs(sim.sft.saveSeconds));
  const metrics = { steps: plan.steps, loss_first: lossFirst, loss_last: loss(plan.steps), train_runtime: plan.seconds, tokens: plan.tokens };
  const tmp = `${final}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'config.json'), JSON.stringify({ simulated: true, base: job.model }));
  writeFileSync(join(tmp, 'metrics.json'), JSON.stringify(metrics));
  renameSync(tmp, final);
  mkdirSync(values.stats as string, { recursive: true });
  writeFileSync(join(values.stats as string, `sft-${process.pid}.json`), JSON.stringify({ gpus: Array.from({ length: gpus }, (_, i) => i), busy: [[startedAt, Date.now()]], plan }));
  emit('done', { output: final, metrics });
}

if (process.argv[1]?.endsWith('sft-job.js')) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
