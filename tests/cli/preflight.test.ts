// Pre-flight: every dataset a command will read is read before a workflow starts. Temporal here is a closed port,
// so a command that got past its pre-flight would fail to connect instead of refusing the dataset.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bonCommand } from '../../cli/bon.js';
import { compareCommand } from '../../cli/compare.js';
import { configCheckCommand } from '../../cli/config-check.js';
import { evalCommand } from '../../cli/eval.js';
import { iterateCommand } from '../../cli/iterate.js';
import { labelCommand } from '../../cli/label.js';
import { UsageError } from '../../cli/load-config.js';

type Section = 'evaluation' | 'sampling' | 'labeling' | 'bestOfN';

let dir: string;
let good: string;
let goodLines: string[];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-preflight-'));
  good = join(dir, 'good.jsonl');
  const fixture = await readFile('tests/fixtures/datasets/tinymath.jsonl', 'utf8');
  goodLines = fixture.trim().split('\n');
  await writeFile(good, fixture);
});

/** A config with every section that names a dataset: `paths` replaces the good file in the sections given. */
async function config(paths: Partial<Record<Section, { path: string; skip?: number }>>): Promise<string> {
  const set = (s: Section) => JSON.stringify([{ name: `${s.toLowerCase()}-set`, source: 'tinymath', ...(paths[s] ?? { path: good }) }]);
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    file,
    `name: t
temporal: { address: "127.0.0.1:9", namespace: default }
policy: { model: m, baseUrls: ["http://127.0.0.1:9/v1"], checkpoint: ${JSON.stringify(dir)} }
prompt: { preset: tinymath }
evaluation: { datasets: ${set('evaluation')} }
sampling: { datasets: ${set('sampling')} }
labeling: { datasets: ${set('labeling')} }
bestOfN: { sampling: { datasets: ${set('bestOfN')} } }
rewardModels: [{ name: rm, model: rm, baseUrls: ["http://127.0.0.1:9"] }]
selection: { mode: oracle }
`,
  );
  return file;
}

async function badFile(name: string, second: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${goodLines[0]}\n${second}\n${goodLines[1]}\n`);
  return path;
}

const refusal = (p: Promise<number>) => p.then((code) => new Error(`exited ${code}`), (e: unknown) => e);

describe('the CLI pre-flight', () => {
  const commands: Array<[string, Section, (args: string[]) => Promise<number>]> = [
    ['eval', 'evaluation', evalCommand],
    ['iterate', 'sampling', iterateCommand],
    ['iterate', 'evaluation', iterateCommand],
    ['compare', 'sampling', compareCommand],
    ['compare', 'evaluation', compareCommand],
    ['label', 'labeling', labelCommand],
    ['bon', 'bestOfN', bonCommand],
  ];

  it.each(commands)('%s refuses a record without an answer in its %s datasets, naming file:line, before starting anything', async (_name, section, command) => {
    const bad = await badFile(`no-answer-${section}.jsonl`, '{"id": "x", "question": "q?", "solution": "1 + 1 = 2\\n#### 2"}');
    const err = await refusal(command(['--config', await config({ [section]: { path: bad } })]));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(`${bad}:2: 'answer'`);
  });

  it('names every bad dataset at once: a malformed line, a missing file, a skip that leaves nothing', async () => {
    const malformed = await badFile('malformed.jsonl', '{"id": "x", "question": ');
    const missing = join(dir, 'no-such.jsonl');
    const cfg = await config({ sampling: { path: malformed }, evaluation: { path: missing }, labeling: { path: good, skip: goodLines.length } });
    const err = await refusal(iterateCommand(['--config', cfg]));
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as Error).message;
    expect(message).toContain(`${malformed}:2: not valid JSON`);
    expect(message).toContain(`${missing}: no such file`);
    // The labeling set is not read by an iteration.
    expect(message).not.toContain('labeling-set');
  });

  it('refuses an empty dataset, and one that skip leaves empty', async () => {
    const empty = join(dir, 'empty.jsonl');
    await writeFile(empty, '\n');
    for (const set of [{ path: empty }, { path: good, skip: goodLines.length }]) {
      const err = await refusal(evalCommand(['--config', await config({ evaluation: set })]));
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toContain(`dataset "evaluation-set": no problems left in ${set.path} (${set.path === empty ? 0 : goodLines.length} read, skip ${set.skip ?? 0})`);
    }
  });
});

describe('config check', () => {
  it('refuses a dataset path that does not exist, in any section', async () => {
    const missing = join(dir, 'missing.jsonl');
    const err = await refusal(configCheckCommand(['check', await config({ bestOfN: { path: missing } })]));
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(`cannot read tinymath dataset file ${missing}: no such file`);
  });

  it('accepts a config whose datasets all read', async () => {
    expect(await configCheckCommand(['check', await config({})])).toBe(0);
  });
});
