// A real pretrained policy through the whole pipeline on the CPU: SmolLM2-135M-Instruct (`make smollm2`) with its
// chat template, on a few GSM8K problems, eval -> sample (n = 2) -> SFT (LoRA, 2 steps) -> the merged checkpoint
// served -> eval, through `prm-raft dev up` and the CLI. Small on purpose (short generations): a plumbing check of
// what the character-level tiny model cannot show, not an accuracy test.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../clients/ports.js';
import { EvalResultRecord, EvaluationSummary } from '../../core/manifests.js';
import { PROMPT_PRESETS, renderPrompt } from '../../core/prompts.js';
import { RaftIterationResult } from '../../core/raft.js';
import { ROOT } from '../helpers/stack.js';

const MODEL = join(ROOT, 'models', 'smollm2-135m-instruct');
const PYTHON = join(ROOT, 'python-sft/.venv/bin/python');
const GSM8K = join(ROOT, 'tests/fixtures/datasets/gsm8k.jsonl'); // 5 GSM8K test records (MIT, see its LICENSE.md)
const PRESET = PROMPT_PRESETS['smollm2-chat']!;
const CHAT_TOKENS = /<\|im_(start|end)\|>|<\|endoftext\|>/;

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');
const questions = async () => (await readFile(GSM8K, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { question: string }).question);

let dir: string;
let config: string;
const cli = async (args: string[]) => {
  const r = await execa(process.execPath, [join(ROOT, 'bin', 'prm-raft.js'), ...args], { cwd: ROOT, reject: false, timeout: 900_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
};

describe.skipIf(!existsSync(join(MODEL, 'config.json')))('SmolLM2-135M-Instruct through the pipeline (run `make smollm2`)', () => {
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `make build` (make test does)');
    dir = await mkdtemp(join(tmpdir(), 'prm-raft-smollm2-'));
    const [temporal, ui, policy] = [await freePort(), await freePort(), await freePort()];
    config = join(dir, 'config.yaml');
    // Evaluation on fixture problems 3-4, sampling on 0-2; random selection keeps one response per prompt whatever
    // its grade (a 135M model with 48 tokens rarely reaches an answer), so SFT always has three examples.
    await writeFile(
      config,
      `name: e2e-smollm2
temporal:
  address: 127.0.0.1:${temporal}
  taskQueues: { cpu: smollm2-cpu-${temporal}, gpu: smollm2-gpu-${temporal} }
  dev: { port: ${temporal}, uiPort: ${ui}, stateDir: ${join(dir, 'state')}, temporalBin: ${join(ROOT, 'python-sft/.venv/bin/temporal')} }
store: { root: ${join(dir, 'runs')} }
python: ${PYTHON}
policy:
  model: smollm2-135m-instruct
  baseUrls: [http://127.0.0.1:${policy}/v1]
  promptsPerRequest: 8
  maxConcurrency: 1
  checkpoint: ${MODEL}
  localServer: { checkpoint: ${MODEL}, port: ${policy} }
prompt: { preset: smollm2-chat }
evaluation:
  maxTokens: 48
  shardSize: 2
  datasets: [{ name: gsm8k-fixture, source: gsm8k, path: ${GSM8K}, skip: 3, limit: 2 }]
sampling:
  n: 2
  maxTokens: 48
  shardSize: 3
  datasets: [{ name: gsm8k-fixture-train, source: gsm8k, path: ${GSM8K}, limit: 3 }]
selection: { mode: random, seed: 0, dropNoAnswer: false, dropTruncated: false }
sft:
  method: lora
  lora: { r: 8, alpha: 16, dropout: 0 }
  maxSteps: 2
  perDeviceBatchSize: 2
  learningRate: 0.0001
  maxLength: 512
  saveSteps: 2
  maxAttempts: 1
`,
    );
    const up = await cli(['dev', 'up', '--config', config]);
    expect(up.exitCode, up.stderr).toBe(0);
  }, 300_000);
  afterAll(async () => {
    if (config) await cli(['dev', 'down', '--config', config]);
  }, 120_000);

  it('the preset is the model\'s own chat template, rendered once', async () => {
    const q = (await questions())[0]!;
    const prompt = renderPrompt(PRESET, q);
    const user = prompt.slice(prompt.indexOf('<|im_start|>user\n') + '<|im_start|>user\n'.length, prompt.lastIndexOf('<|im_end|>\n<|im_start|>assistant\n'));
    const r = await execa(PYTHON, ['-c', [
      'import json, sys',
      'from transformers import AutoTokenizer',
      't = AutoTokenizer.from_pretrained(sys.argv[1])',
      'print(json.dumps(t.apply_chat_template([{"role": "user", "content": sys.argv[2]}], tokenize=False, add_generation_prompt=True)))',
    ].join('\n'), MODEL, user], { env: { HF_HUB_OFFLINE: '1' } });
    expect(JSON.parse(r.stdout)).toBe(prompt);
    expect(prompt.match(/<\|im_start\|>/g)).toHaveLength(3); // system, user, assistant
  }, 120_000);

  it('evaluates the base model on GSM8K problems: chat tokens never leak into the answers', async () => {
    const r = await cli(['eval', '--config', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const d = EvaluationSummary.parse(JSON.parse(r.stdout)).datasets[0]!;
    expect(d).toMatchObject({ dataset: 'gsm8k-fixture', total: 2 });
    const records = (await readFile(d.results.uri, 'utf8')).trim().split('\n').map((l) => EvalResultRecord.parse(JSON.parse(l)));
    expect(records).toHaveLength(2);
    for (const rec of records) {
      expect(['stop', 'length']).toContain(rec.finishReason);
      expect(rec.prediction.trim().length).toBeGreaterThan(0);
      expect(rec.prediction).not.toMatch(CHAT_TOKENS);
    }
  }, 600_000);

  it('runs a RAFT iteration: samples, LoRA SFT merged into a plain checkpoint, served and evaluated', async () => {
    const r = await cli(['iterate', '--config', config, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const result = RaftIterationResult.parse(JSON.parse(r.stdout));
    expect(result.sampling).toMatchObject({ prompts: 3, responses: 6 });
    expect(result.selection.kept).toBe(3);
    expect(result.sft).toMatchObject({ steps: 2, cached: false });
    expect(result.sft.lossFirst).not.toBeNull();
    expect(result.before.datasets[0]?.total).toBe(2);
    expect(result.after.datasets[0]?.total).toBe(2);

    // The merged checkpoint: plain weights (no adapter files), beside the adapter; the tokenizer and its chat
    // template are the base model's, byte for byte.
    const final = result.policyAfter;
    const files = await readdir(final);
    expect(files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json', 'chat_template.jinja']));
    expect(files.filter((f) => f.startsWith('adapter_'))).toEqual([]);
    expect(await readdir(join(final, '..', 'adapter'))).toContain('adapter_config.json');
    for (const f of ['tokenizer.json', 'chat_template.jinja']) expect(await sha256(join(final, f))).toBe(await sha256(join(MODEL, f)));
    const cfg = JSON.parse(await readFile(join(final, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.quantization_config).toBeUndefined();
    expect(cfg.eos_token_id).toBe(2);

    // What SFT trained on: each prompt is one question in the chat template, applied once; each completion is the
    // model's text with the stop (EOS) cut off, so the job appends <|im_end|> exactly once.
    const selDir = join(dir, 'runs', 'cache', 'selection');
    const [key] = await readdir(selDir);
    const sft = (await readFile(join(selDir, key!, 'sft.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string });
    expect(sft).toHaveLength(3);
    const expected = new Set((await questions()).slice(0, 3).map((q) => renderPrompt(PRESET, q)));
    for (const ex of sft) {
      expect(expected.has(ex.prompt)).toBe(true);
      expect(ex.completion.trim().length).toBeGreaterThan(0);
      expect(ex.completion).not.toMatch(CHAT_TOKENS);
    }

    // The after-evaluation's answers come from the served merged checkpoint.
    const after = (await readFile(result.after.datasets[0]!.results.uri, 'utf8')).trim().split('\n').map((l) => EvalResultRecord.parse(JSON.parse(l)));
    expect(after).toHaveLength(2);
    for (const rec of after) expect(rec.prediction).not.toMatch(CHAT_TOKENS);
  }, 900_000);
});
