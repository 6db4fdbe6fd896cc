// The config schema: the shipped configs pass, and every kind of mistake is named by its path.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePrompt } from '../../core/config.js';
import { parseConfigText } from '../../core/parse-config.js';

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

describe('config', () => {
  it.each(['configs/tiny.yaml', ...readdirSync('configs/paper').map((f) => join('configs/paper', f))])('%s is valid', (file) => {
    const parsed = parseConfigText(readFileSync(file, 'utf8'), file);
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
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
      'prompt.preset: expected one of "metamath"|"deepseek-math-instruct"|"tinymath", got "nope"',
      'evaluation.datasets.0.source: expected one of "gsm8k"|"math"|"math500"|"omi2"|"tinymath", got "gsm9k"',
      'evaluation.shardSize: expected a positive integer, got 0',
    ]);
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

  it('reports unreadable YAML with its line and column, and a non-mapping document', () => {
    expect(problems('name: [x\n')).toEqual([expect.stringMatching(/^c\.yaml:\d+:\d+: unreadable YAML: /)]);
    expect(problems('name: a\nname: b\n')[0]).toMatch(/^c\.yaml:2:1: unreadable YAML: Map keys must be unique/);
    expect(problems('- a\n- b\n')).toEqual(['c.yaml: expected a YAML mapping at the top level']);
  });
});
