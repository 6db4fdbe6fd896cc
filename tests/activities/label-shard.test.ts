// labelShard with a scripted policy server and the real grader: counts per step, resume after a crash, export.
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelShard, writeLabelPlan, type LabelShardCommon, type LabelShardInput } from '../../activities/label-shard.js';
import { exportPrmTrainingData, runPrmTraining } from '../../activities/train-prm.js';
import { PrmTrainingConfig } from '../../core/config.js';
import { BadInputError } from '../../core/errors.js';
import { labelPrmDataInputFromConfig, LabeledSolution, summarizeLabelShards, type LabelShardResult } from '../../core/labeling.js';
import { parseConfigText } from '../../core/parse-config.js';
import type { ProblemRecord } from '../../core/records.js';
import { toJsonl, writeFileAtomic } from '../../store/files.js';
import { exportLabels } from '../../store/label-export.js';
import { completionBody, startStubServer, type StubServer } from '../helpers/stub-server.js';
import { PYTHON } from '../helpers/temporal.js';

const problems: ProblemRecord[] = Array.from({ length: 4 }, (_, i) => ({
  id: `t-${i}`,
  source: 'tinymath',
  question: `What is ${i} + 3?`,
  answer: String(i + 3),
  answerKind: 'tinymath',
}));

/**
 * Solution j: two right steps (different for every j), then the answer, right only for j = 0. A completion of
 * any prefix reaches the answer for even choice indices only, so every prefix gets k = ceil(M/2).
 */
function reply(prompt: string, j: number): string {
  const i = Number(/What is (\d+)/.exec(prompt)?.[1]);
  if (prompt.endsWith('Answer:\n')) return `${i} + ${3 + j} - ${j} = ${i + 3}\n${i + 3} * 1 = ${i + 3}\n#### ${j === 0 ? i + 3 : i + 4}`;
  return `#### ${j % 2 === 0 ? i + 3 : i + 5}`;
}

let store: string;
let server: StubServer;
let failAfter = Number.POSITIVE_INFINITY;
let answered = 0;
let common: LabelShardCommon;
let input: LabelShardInput;

let clean: LabelShardResult;
let cleanPrompts: string[];

beforeAll(async () => {
  store = await mkdtemp(join(tmpdir(), 'prm-raft-label-'));
  server = await startStubServer((_path, body) => {
    const b = body as { prompt: string[]; n: number };
    if (answered >= failAfter) return { status: 500, body: { error: { message: 'the server fell over' } } };
    answered += 1;
    return { status: 200, body: completionBody(b.prompt, b.n, reply) };
  });
  const parsed = parseConfigText(
    `name: t
policy: { model: m, baseUrls: ["${server.url}/v1"], maxConcurrency: 1, maxRetries: 0 }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: tiny, source: tinymath, path: unused }] }
labeling: { solutions: 3, completions: 5, maxTokens: 64, shardSize: 4, datasets: [{ name: tiny, source: tinymath, path: unused }] }
python: ${PYTHON}
store: { root: ${store} }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  const uri = join(store, 'problems.jsonl');
  await writeFile(uri, toJsonl(problems));
  const { generator, completer, prompt, labeling, steps, grader, python, storeRoot } = labelPrmDataInputFromConfig(parsed.config);
  common = { generator, completer, prompt, labeling, steps, grader, python, storeRoot, generatorFingerprint: 'm@a', completerFingerprint: 'm@a' };
  input = { ...common, dataset: { name: 'tiny', source: 'tinymath', uri, count: problems.length, sha256: 'abc' }, shard: { index: 0, start: 0, end: 4 } };
  clean = await run(input);
  cleanPrompts = completionPrompts();
}, 300_000);

afterAll(async () => {
  await server.close();
});

const run = (i: LabelShardInput): Promise<LabelShardResult> => new MockActivityEnvironment().run(labelShard, i);
const completionPrompts = () =>
  server.requests.flatMap((r) => (r.body as { prompt: string[] }).prompt).filter((p) => !p.endsWith('Answer:\n'));
async function solutionsOf(result: LabelShardResult): Promise<LabeledSolution[]> {
  return (await readFile(result.uri, 'utf8')).trim().split('\n').map((l) => LabeledSolution.parse(JSON.parse(l)));
}

describe('labelShard', () => {
  it('counts, per step prefix, the completions that reach the reference; the last step is the outcome', async () => {
    const result = clean;
    expect(result).toMatchObject({ problems: 4, solutions: 12, correctSolutions: 4, steps: 36, completions: 4 * 3 * 2 * 5, incomplete: 0 });
    const solutions = await solutionsOf(result);
    for (const s of solutions) {
      expect(s.steps).toHaveLength(3);
      expect(s.counts).toEqual([{ k: 3, m: 5 }, { k: 3, m: 5 }, { k: s.correct ? 1 : 0, m: 1 }]);
    }
    // Each prefix is sent exactly as the policy wrote it, after the prompt.
    expect(cleanPrompts).toContain('Question: What is 0 + 3?\nAnswer:\n0 + 4 - 1 = 3\n');
    expect(cleanPrompts).toContain('Question: What is 0 + 3?\nAnswer:\n0 + 4 - 1 = 3\n3 * 1 = 3\n');
    expect(new Set(cleanPrompts).size).toBe(cleanPrompts.length);
  });

  it('resumes after a crash in the completions without losing or repeating a prefix', async () => {
    const crashing = { ...input, storeRoot: join(store, 'crash') };
    server.requests.length = 0;
    answered = 0;
    // 4 generation requests, then 9 of the 24 prefixes, then the server falls over.
    failAfter = 4 + 9;
    await expect(run(crashing)).rejects.toThrow();
    const before = completionPrompts().filter((_, i) => i < 9);
    server.requests.length = 0;
    failAfter = Number.POSITIVE_INFINITY;
    const result = await run(crashing);

    const after = completionPrompts();
    // No generation again, and only the prefixes the crashed attempt had not finished.
    expect(server.requests.some((r) => (r.body as { prompt: string[] }).prompt.some((p) => p.endsWith('Answer:\n')))).toBe(false);
    expect(after).toHaveLength(cleanPrompts.length - 9);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    expect(await solutionsOf(result)).toEqual(await solutionsOf(clean));
  }, 300_000);

  it('reuses a finished shard without a request', async () => {
    const n = server.requests.length;
    expect((await run(input)).cached).toBe(true);
    expect(server.requests.length).toBe(n);
  });
});

describe('exportLabels', () => {
  it('refuses a run that has not finished, naming the shards it lacks', async () => {
    const runDir = join(store, 'runs', 'label-x');
    const second = { ...input.dataset, count: 8 };
    // Shard 0 of this plan is the finished one above (same key); shard 1 never ran.
    await writeLabelPlan({ runDir, common, datasets: [second] });
    const job = { runDir, kind: 'soft' as const, format: 'jsonl' as const, out: join(store, 'out.jsonl') };
    await expect(exportLabels(job)).rejects.toThrow(BadInputError);
    await expect(exportLabels(job)).rejects.toThrow(/not finished: 1 of 2 shards have no counts yet: tiny shard 1 \(problems 4–7\)/);
    await expect(readFile(job.out)).rejects.toThrow(/ENOENT/);
  });

  it('refuses counts changed since the run wrote them, leaving no output', async () => {
    const runDir = join(store, 'runs', 'label-z');
    const uri = join(runDir, 'labels.jsonl');
    const text = await readFile(clean.uri, 'utf8');
    await writeFileAtomic(uri, text.replace('"k":3', '"k":4'));
    const labelInput = { ...labelPrmDataInputFromConfig(parseConfigOk()), generator: common.generator, completer: common.completer };
    await writeFileAtomic(join(runDir, 'summary.json'), JSON.stringify(summarizeLabelShards(runDir, labelInput, [{ ...clean, uri }])));
    const out = join(store, 'changed.jsonl');
    await expect(exportLabels({ runDir, kind: 'soft', format: 'jsonl', out })).rejects.toThrow(/changed since the run wrote it/);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a corrupt line as bad input naming file:line, leaving no output', async () => {
    const runDir = join(store, 'runs', 'label-c');
    const uri = join(runDir, 'labels.jsonl');
    const [first, ...rest] = (await readFile(clean.uri, 'utf8')).trim().split('\n');
    await writeFileAtomic(uri, [first, '{"problemId": "t-0", "st', ...rest].join('\n'));
    const labelInput = { ...labelPrmDataInputFromConfig(parseConfigOk()), generator: common.generator, completer: common.completer };
    await writeFileAtomic(join(runDir, 'summary.json'), JSON.stringify(summarizeLabelShards(runDir, labelInput, [{ ...clean, uri }])));
    const out = join(store, 'corrupt.jsonl');
    const err = await exportLabels({ runDir, kind: 'soft', format: 'jsonl', out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect((err as Error).message.startsWith(`${uri}:2: not JSON`)).toBe(true);
    await expect(readFile(out)).rejects.toThrow(/ENOENT/);
  });

  it('writes hard, soft and ER labels from the counts, in jsonl and Math-Shepherd form', async () => {
    const runDir = join(store, 'runs', 'label-y');
    const shard = clean;
    const labelInput = { ...labelPrmDataInputFromConfig(parseConfigOk()), generator: common.generator, completer: common.completer };
    await writeFileAtomic(join(runDir, 'summary.json'), JSON.stringify(summarizeLabelShards(runDir, labelInput, [shard])));
    const read = async (out: string) => (await readFile(out, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));

    const soft = await exportLabels({ runDir, kind: 'soft', format: 'jsonl', out: join(store, 'soft.jsonl') });
    expect(soft).toMatchObject({ solutions: 12, steps: 36, skipped: 0 });
    const lines = await read(soft.out);
    expect(lines[0]).toMatchObject({ id: 't-0/0', steps: ['0 + 3 - 0 = 3', '3 * 1 = 3', '#### 3'], labels: [0.6, 0.6, 1], correct: true });

    const er = await read((await exportLabels({ runDir, kind: 'er', eta: 2, format: 'jsonl', out: join(store, 'er.jsonl') })).out);
    // (1/2)·ln(1 − 0.6 + 0.6·e²) = 0.8435…
    expect(er[0].labels[0]).toBeCloseTo(0.5 * Math.log(0.4 + 0.6 * Math.exp(2)), 12);

    const ms = await read((await exportLabels({ runDir, kind: 'hard', format: 'math-shepherd', out: join(store, 'ms.jsonl') })).out);
    expect(ms[1]).toEqual({
      id: 't-0/1',
      input: 'What is 0 + 3? 0 + 4 - 1 = 3 ки\n3 * 1 = 3 ки\n#### 4 ки',
      label: 'What is 0 + 3? 0 + 4 - 1 = 3 +\n3 * 1 = 3 +\n#### 4 -',
      value: [1, 1, 0],
    });
  });

  it('trains a PRM from the run as a stage: the labels exported once, the job given them, the checkpoint with its provenance', async () => {
    const runDir = join(store, 'runs', 'label-y'); // the run the test above wrote
    const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);
    const data = await run(exportPrmTrainingData, { labelRunDir: runDir, train: { labels: 'er', eta: 2 }, storeRoot: store });
    expect(data.count).toBe(12);
    const rows = (await readFile(data.uri, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rows[0].labels[0]).toBeCloseTo(0.5 * Math.log(0.4 + 0.6 * Math.exp(2)), 12);
    expect(await run(exportPrmTrainingData, { labelRunDir: runDir, train: { labels: 'er', eta: 2 }, storeRoot: store })).toEqual(data);
    expect((await run(exportPrmTrainingData, { labelRunDir: runDir, train: { labels: 'hard' }, storeRoot: store })).sha256).not.toBe(data.sha256);

    // A stand-in job: checks the file it is given is the export, writes a checkpoint and says so.
    const field = (key: string) => `$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['${key}'])" "$1")`;
    const job =
      `cmp -s "${field('train_file')}" "${data.uri}" || exit 2; o="${field('output_dir')}"; mkdir -p "$o"; echo w > "$o/model.safetensors";` +
      ` echo '{"event":"progress","step":1,"total":1,"loss":0.7}'; echo "{\\"event\\":\\"done\\",\\"output\\":\\"$o\\"}"`;
    const training = PrmTrainingConfig.parse({ base: join(store, 'base'), command: ['bash', '-c', job, 'job', '{config}'], maxSteps: 3, stepLogprobFeature: true });
    const { serving: _s, ...settings } = training;
    const input = { labelRunDir: runDir, train: { labels: 'er' as const, eta: 2 }, data, training: settings, python: PYTHON, storeRoot: store };
    const result = await run(runPrmTraining, input);
    expect(result).toMatchObject({ steps: 1, lossFirst: 0.7, cached: false, provenance: { labels: 'er', eta: 2, base: join(store, 'base'), trainingData: data } });
    expect(result.provenance.job).toMatchObject({ max_steps: 3, step_logprob_feature: true, kind: 'autoregressive', base: join(store, 'base') });
    expect(JSON.parse(await readFile(join(result.checkpoint, 'provenance.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(result.provenance)));
    expect(await run(runPrmTraining, input)).toMatchObject({ checkpoint: result.checkpoint, cached: true });
    // Another learning rate is another PRM.
    const other = await run(runPrmTraining, { ...input, training: { ...settings, learningRate: 5e-4 } });
    expect(other.checkpoint).not.toBe(result.checkpoint);
  });
});

function parseConfigOk() {
  const parsed = parseConfigText(
    `name: t
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"] }
prompt: { preset: tinymath }
evaluation: { datasets: [{ name: tiny, source: tinymath, path: unused }] }
labeling: { datasets: [{ name: tiny, source: tinymath, path: unused }] }
`,
    'test.yaml',
  );
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return parsed.config;
}
