// The embedded stack for end-to-end tests: a config of its own (free ports, a temporary state and store),
// driven through the real CLI, so what is tested is what a user runs.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../clients/ports.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'prm-raft.js');

export interface TestStack {
  dir: string;
  config: string;
  cli: (args: string[], env?: Record<string, string>) => Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

/** Writes a config for a private stack; `extra` is appended YAML (sampling, prm, sft sections). */
export async function makeStack(sections: (ports: { prm: number }) => string): Promise<TestStack> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `make build` (make test does)');
  const dir = await mkdtemp(join(tmpdir(), 'prm-raft-e2e-'));
  const [temporal, ui, policy, prm] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `name: e2e
temporal:
  address: 127.0.0.1:${temporal}
  taskQueues: { cpu: e2e-cpu-${temporal}, gpu: e2e-gpu-${temporal} }
  dev: { port: ${temporal}, uiPort: ${ui}, stateDir: ${join(dir, 'state')}, temporalBin: ${join(ROOT, 'python-sft/.venv/bin/temporal')} }
store: { root: ${join(dir, 'runs')} }
python: ${join(ROOT, 'python-sft/.venv/bin/python')}
policy:
  model: tinymath-policy
  baseUrls: [http://127.0.0.1:${policy}/v1]
  promptsPerRequest: 8
  maxConcurrency: 2
  checkpoint: ${join(ROOT, 'models/tinymath-policy')}
  localServer: { checkpoint: ${join(ROOT, 'models/tinymath-policy')}, port: ${policy} }
prompt: { preset: tinymath }
evaluation:
  maxTokens: 100
  shardSize: 6
  datasets: [{ name: tinymath-test, source: tinymath, path: ${join(ROOT, 'data/tinymath/test.jsonl')}, limit: 12 }]
${sections({ prm })}`,
  );
  return {
    dir,
    config,
    cli: async (args, env) => {
      const r = await execa(process.execPath, [CLI, ...args], { cwd: ROOT, reject: false, env: { ...env }, timeout: 900_000 });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
  };
}
