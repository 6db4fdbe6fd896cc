// What every benchmark stands on: stub servers in a process of their own, and a problem file to run over.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../clients/ports.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PYTHON = join(ROOT, 'python-sft/.venv/bin/python');

/** The stub policy (`${policyUrl}/v1`) and PRM servers of `bench/stub-servers.ts`, answering at once. */
export async function startStubServers(): Promise<{ policyUrl: string; prmUrl: string; stop: () => void }> {
  const [policyPort, prmPort] = [await freePort(), await freePort()];
  const stubs = spawn(process.execPath, [join(ROOT, 'dist/bench/stub-servers.js'), String(policyPort), String(prmPort)], { stdio: 'inherit' });
  await new Promise((r) => setTimeout(r, 500));
  return { policyUrl: `http://127.0.0.1:${policyPort}`, prmUrl: `http://127.0.0.1:${prmPort}`, stop: () => stubs.kill() };
}

/** `count` tinymath-shaped problems in `dir/problems.jsonl`. */
export async function writeBenchProblems(dir: string, count: number): Promise<string> {
  const path = join(dir, 'problems.jsonl');
  await writeFile(
    path,
    Array.from({ length: count }, (_, i) => JSON.stringify({ id: `p-${i}`, question: `Ann has ${i} apples. She buys 3 more. How many?`, solution: `${i} + 3 = ${i + 3}\n#### ${i + 3}`, answer: String(i + 3) })).join('\n') + '\n',
  );
  return path;
}
