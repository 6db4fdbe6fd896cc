// The config schema: the shipped configs pass, and every kind of mistake is named by its path.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePrompt } from '../../core/config.js';
import { parseConfigText } from '../../core/parse-config.js';
import { PROMPT_PRESETS } from '../../core/prompts.js';
import { BestOfNInput, bestOfNInputFromConfig } from '../../core/best-of-n.js';
import { RaftIterationInput, raftIterationInputFromConfig } from '../../core/raft.js';

const minimal = `
name: t
policy: { model: m, baseUrls: ["http://127.0.0.1:8000/v1"] }
prompt: { preset: tinymath }
evaluation:
  datasets: [{ name: tiny, source: tinymath, path: data/tinymath/test.jsonl }]
`;

function problems(text: string): string[] {
  const parsed = parseConfigText(text, 'c.yaml');
  if (parsed.ok) throw new Error('expected the config to be rejected');
  return parsed.problems;
}

/** Every file under configs/, at any depth: a config added anywhere there is checked without editing this test. */
function shippedConfigs(dir = 'configs'): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? shippedConfigs(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

describe('config', () => {
  const shipped = shippedConfigs();
  it.each(shipped)('%s is valid', (file) => {
    expect(file, 'configs/ holds configs only, each a .yaml file').toMatch(/\.yaml$/);
    const parsed = parseConfigText(readFileSync(file, 'utf8'), file);
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
  });

  it('finds every shipped config, in configs/ and configs/paper/', () => {
    expect(shipped).toEqual(expect.arrayContaining(['configs/tiny.yaml', 'configs/tiny-bon.yaml', 'configs/tiny-compare.yaml', 'configs/paper/qwen25-math-prm-vllm.yaml']));
    expect(shipped.filter((f) => f.startsWith('configs/paper/')).length).toBeGreaterThanOrEqual(7);
  });

  it('fills defaults: task queues, store, grader, sampling seed', () => {
    const parsed = parseConfigText(minimal, 'c.yaml');
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    expect(parsed.config.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueues: { cpu: 'prm-raft-cpu', gpu: 'prm-raft-gpu' } });
    expect(parsed.config.store.root).toBe('runs');
    expect(parsed.config.evaluation).toMatchObject({ seed: 0, maxTokens: 512 });
    expect(resolvePrompt(parsed.config.prompt).stop).toEqual(['\n\n', 'Question:']);
  });

  it('names a wrong type with the value it got', () => {
    expect(problems(minimal.replace('prompt:', 'evaluation2: 1\nprompt:').replace('baseUrls', 'maxConcurrency: "16x", baseUrls'))).toEqual([
      'policy.maxConcurrency: expected a positive integer, got "16x"',
      'evaluation2: unknown key',
    ]);
  });

  it('rejects unknown keys at any depth', () => {
    expect(problems(minimal.replace('model: m', 'modle: m, model: m'))).toEqual(['policy.modle: unknown key']);
    expect(problems(`${minimal}temporal: { dev: { prot: 1 } }\n`)).toEqual(['temporal.dev.prot: unknown key']);
  });

  it('says which key is missing', () => {
    expect(problems(minimal.replace('name: t\n', ''))).toEqual(['name: required']);
  });

  it('rejects a bad URL, an unknown preset, an unknown source, zero', () => {
    const text = minimal
      .replace('http://127.0.0.1:8000/v1', 'ftp://x')
      .replace('preset: tinymath', 'preset: nope')
      .replace('source: tinymath', 'source: gsm9k')
      .replace('  datasets:', '  shardSize: 0\n  datasets:');
    expect(problems(text)).toEqual([
      'policy.baseUrls.0: expected an http(s) URL such as http://127.0.0.1:8000/v1, got "ftp://x"',
      `prompt.preset: expected one of ${Object.keys(PROMPT_PRESETS).map((k) => `"${k}"`).join('|')}, got "nope"`,
      'evaluation.datasets.0.source: expected one of "gsm8k"|"math"|"math500"|"omi2"|"tinymath", got "gsm9k"',
      'evaluation.shardSize: expected a positive integer, got 0',
    ]);
  });

  it('refuses a run name that would leave the store (it becomes part of folder names)', () => {
    for (const name of ['x/../../../t/escaped', '../up', 'a b', 'Upper']) {
      expect(problems(minimal.replace('name: t\n', `name: "${name}"\n`))).toEqual([`name: expected a lowercase name of letters, digits, ".", "_" or "-", got "${name}"`]);
    }
  });

  it('reports a duplicate dataset name', () => {
    expect(problems(minimal.replace(']\n', ', { name: tiny, source: gsm8k, path: x }]\n'))).toEqual(['evaluation.datasets.1.name: duplicate dataset name "tiny"']);
  });

  it('requires a preset or a template, not both, and a template with one {question}', () => {
    expect(problems(minimal.replace('{ preset: tinymath }', '{ preset: tinymath, template: "Q: {question}" }'))).toEqual([
      'prompt: give either a preset or a template with stop sequences, not both',
    ]);
    expect(problems(minimal.replace('{ preset: tinymath }', '{ template: "no placeholder", stop: [] }'))).toEqual([
      'prompt.template: template must contain "{question}" exactly once',
    ]);
  });

  it("refuses a reward model named after a comparison's own rows", () => {
    const models = (names: string[]) => `${minimal}rewardModels:\n${names.map((n) => `  - { name: ${n}, model: m, baseUrls: ["http://127.0.0.1:9"] }\n`).join('')}`;
    expect(problems(models(['er-2', 'random', 'baseline']))).toEqual([
      'rewardModels.1.name: reward model name "random" is reserved for the comparison row of that name: RAFT with selection.mode random, which needs no reward model',
      'rewardModels.2.name: reward model name "baseline" is reserved for the comparison row of that name: the untuned policy',
    ]);
    expect(problems(models(['oracle']))).toEqual([expect.stringContaining('"oracle" is reserved')]);
    expect(problems(models(['majority']))).toEqual([expect.stringContaining('"majority" is reserved')]);
    // Only those names: one that merely contains them, or an Object.prototype key, is fine.
    expect(parseConfigText(models(['random-2', 'constructor']), 'c.yaml').ok).toBe(true);
  });

  it('takes reward models trained by compare, and names what is wrong with one as a served or a trained model', () => {
    const models = (...lines: string[]) => `${minimal}rewardModels:\n${lines.map((l) => `  - ${l}\n`).join('')}`;
    const ok = parseConfigText(models('{ name: er-2, train: { labels: er, eta: 2 } }', '{ name: s, model: m, baseUrls: ["http://127.0.0.1:9"] }'), 'c.yaml');
    expect(ok.ok && ok.config.rewardModels).toEqual([
      { name: 'er-2', train: { labels: 'er', eta: 2 }, aggregation: 'min', maxConcurrency: 8, requestTimeoutSeconds: 300, maxRetries: 3 },
      expect.objectContaining({ name: 's', model: 'm', kind: 'prm' }),
    ]);
    expect(problems(models('{ name: a, train: { labels: er } }'))).toEqual(['rewardModels.0.train.eta: ER labels need eta (the paper uses 2)']);
    expect(problems(models('{ name: a, train: { labels: hard, eta: 2 } }'))).toEqual(['rewardModels.0.train.eta: eta applies to er labels only, not hard']);
    expect(problems(models('{ name: a, train: { labels: best } }'))).toEqual(['rewardModels.0.train.labels: expected one of "hard"|"soft"|"er", got "best"']);
    // A served model's mistake is told as one, not as a failed alternative.
    expect(problems(models('{ name: a, model: m, baseUrls: ["http://127.0.0.1:9"], maxConcurency: 2 }'))).toEqual(['rewardModels.0.maxConcurency: unknown key']);
  });

  it('takes a PRM served through vLLM\'s Pooling API, and refuses a bad formatting or a local prm_server for it', () => {
    const vllm = (pooling: string, extra = '') => `${minimal}prm: { model: p, baseUrls: ["http://127.0.0.1:9"]${extra}, vllmPooling: ${pooling} }\n`;
    const ok = parseConfigText(vllm('{ prompt: "{question} {steps}", stepTag: " ки", positiveIndex: 0 }'), 'c.yaml');
    expect(ok.ok && ok.config.prm?.vllmPooling).toEqual({ prompt: '{question} {steps}', stepTag: ' ки', stepSeparator: '', positiveIndex: 0 });
    expect(problems(vllm('{ prompt: "{question}", stepTag: "", positiveIndex: 2, stepTags: x }'))).toEqual([
      'prm.vllmPooling.prompt: prompt must contain "{question}" and "{steps}" exactly once each',
      'prm.vllmPooling.stepTag: expected the step tag, such as "<extra_0>"',
      'prm.vllmPooling.positiveIndex: expected one of 0|1, got 2',
      'prm.vllmPooling.stepTags: unknown key',
    ]);
    const pooling = '{ prompt: "{question} {steps}", stepTag: "<extra_0>", positiveIndex: 1 }';
    const local = "localServer: starts the project's PRM server, which speaks /v1/score, not vLLM's Pooling API: serve the model with vllm serve and drop localServer, or drop vllmPooling";
    expect(problems(vllm(pooling, ', localServer: { checkpoint: /prm, port: 8200 }'))).toEqual([`prm.${local}`]);
    const models = (line: string) => `${minimal}rewardModels:\n  - ${line}\n`;
    expect(problems(models(`{ name: a, model: m, baseUrls: ["http://127.0.0.1:9"], localServer: { checkpoint: /prm, port: 8200 }, vllmPooling: ${pooling} }`))).toEqual([`rewardModels.0.${local}`]);
    // A model compare trains is served by the project's PRM server.
    expect(problems(models(`{ name: a, train: { labels: hard }, vllmPooling: ${pooling} }`))).toEqual(['rewardModels.0.vllmPooling: unknown key']);
  });

    it('reports unreadable YAML with its line and column, and a non-mapping document', () => {
    expect(problems('name: [x\n')).toEqual([expect.stringMatching(/^c\.yaml:\d+:\d+: unreadable YAML: /)]);
    expect(problems('name: a\nname: b\n')[0]).toMatch(/^c\.yaml:2:1: unreadable YAML: Map keys must be unique/);
    expect(problems('- a\n- b\n')).toEqual(['c.yaml: expected a YAML mapping at the top level']);
  });
});

describe('iteration input from a config', () => {
  const iteration = `${minimal.replace('baseUrls: ["http://127.0.0.1:8000/v1"] }', 'baseUrls: ["http://127.0.0.1:8000/v1"], checkpoint: /ckpt }')}
sampling: { datasets: [{ name: train, source: tinymath, path: tr.jsonl }] }
`;
  const prmSection = 'prm: { model: p, baseUrls: ["http://127.0.0.1:9"], localServer: { checkpoint: /prm, port: 8200 } }\n';
  const config = (text: string) => {
    const parsed = parseConfigText(text, 'c.yaml');
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    return parsed.config;
  };

  it('takes the reward model, without its local server, in prm mode', () => {
    const input = raftIterationInputFromConfig(config(iteration + prmSection));
    expect(input.selection.mode).toBe('prm');
    expect(input.prm).toEqual({ model: 'p', baseUrls: ['http://127.0.0.1:9'], kind: 'prm', aggregation: 'min', maxConcurrency: 8, requestTimeoutSeconds: 300, maxRetries: 3 });
  });

  it('passes a vLLM-served PRM\'s formatting on to the iteration and to best-of-N (configs/paper/qwen25-math-prm-vllm.yaml)', () => {
    const shipped = config(readFileSync('configs/paper/qwen25-math-prm-vllm.yaml', 'utf8'));
    expect(RaftIterationInput.parse(raftIterationInputFromConfig(shipped)).prm).toMatchObject({ model: 'qwen25-math-prm-7b', vllmPooling: { stepTag: '<extra_0>', positiveIndex: 1 } });
    expect(BestOfNInput.parse(bestOfNInputFromConfig(shipped)).rewardModels.map((m) => m.vllmPooling?.stepTag)).toEqual(['<extra_0>', ' ки']);
  });

  it('refuses prm mode without a reward model, naming prm and selection.mode', () => {
    expect(() => raftIterationInputFromConfig(config(iteration))).toThrow(/lacks: prm \(the reward model that selection\.mode prm ranks responses by — or set selection\.mode to oracle, random or majority/);
  });

  it('refuses prl mode without a prl section, naming it (config check), and fills the prl defaults', () => {
    expect(problems(`${iteration}selection: { mode: prl }\n`)).toEqual([expect.stringMatching(/^prl: selection\.mode prl needs the section prl \(η and the initial policy/)]);
    expect(problems(`${iteration}selection: { mode: prl }\nprl: { eta: 0 }\n`)).toEqual(['prl.eta: expected a number > 0, got 0']);
    expect(problems(`${iteration}prl: { eta: 2, score: max, steps: { by: tokens, blockTokens: 0 } }\n`).sort()).toEqual([
      expect.stringMatching(/^prl\.score: expected one of "sequence"\|"min-step"/),
      expect.stringMatching(/^prl\.steps\.blockTokens/),
    ]);
    expect(problems(`${iteration}prl: { eta: 2, logprobs: { command: ["{python}", "{nope}"] } }\n`)).toEqual([expect.stringMatching(/^prl\.logprobs\.command: unknown placeholder \{nope\}/)]);
    const input = raftIterationInputFromConfig(config(`${iteration}steps: { by: blank-line }\nselection: { mode: prl }\nprl: { eta: 2 }\n`));
    expect(RaftIterationInput.parse(input).prl).toEqual({
      eta: 2,
      boundary: 'after-step',
      // PRL's steps default to the config's steps.
      steps: { by: 'blank-line' },
      score: 'sequence',
      logprobs: { command: ['{python}', '-m', 'prm_raft.logprobs', '--config', '{config}'], batchTokens: 8192, maxBatchSize: 64, bf16: false, device: 'auto' },
    });
    expect(input.prm).toBeUndefined();
    const own = raftIterationInputFromConfig(config(`${iteration}selection: { mode: prl }\nprl: { eta: 10, initialPolicy: /pi0, score: min-step, steps: { by: tokens, blockTokens: 256 } }\n`));
    expect(own.prl).toMatchObject({ eta: 10, initialPolicy: '/pi0', score: 'min-step', steps: { by: 'tokens', blockTokens: 256 } });
    // Another mode passes no prl settings on, even when the config has them.
    expect(raftIterationInputFromConfig(config(`${iteration}selection: { mode: oracle }\nprl: { eta: 2 }\n`)).prl).toBeUndefined();
  });

  it('needs no reward model in the baseline modes, and passes none on even when the config has one', () => {
    for (const mode of ['oracle', 'random', 'majority']) {
      const without = raftIterationInputFromConfig(config(`${iteration}selection: { mode: ${mode}, seed: 7 }\n`));
      expect(without.selection).toMatchObject({ mode, seed: 7 });
      expect(without.prm).toBeUndefined();
      expect(raftIterationInputFromConfig(config(`${iteration}${prmSection}selection: { mode: ${mode} }\n`)).prm).toBeUndefined();
    }
  });
});
