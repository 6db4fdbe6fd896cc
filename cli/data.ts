// prm-raft data prepare — fetch the public datasets (where the network allows) and write normalized files.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runProcess } from '../clients/process.js';
import { createOmi2Draw } from '../core/datasets.js';
import type { DatasetSource, ProblemRecord } from '../core/records.js';
import { streamProblems } from '../store/dataset-files.js';
import { exists, writeJsonlAtomic } from '../store/files.js';
import { DEFAULT_PYTHON, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';

const USAGE = 'prm-raft data prepare [--raw DIR] [--out DIR] [--skip-fetch] [--seed N] [--omi2-per-source N]';

/** The raw files `fetch_datasets` writes (or a user copies by hand), and how each is read. */
const RAW_FILES: Array<{ name: string; source: DatasetSource; fields: string }> = [
  { name: 'gsm8k-train', source: 'gsm8k', fields: 'question, answer (ending "#### N")' },
  { name: 'gsm8k-test', source: 'gsm8k', fields: 'question, answer (ending "#### N")' },
  { name: 'math-train', source: 'math', fields: 'problem, level, type, solution (answer in \\boxed{})' },
  { name: 'math500-test', source: 'math500', fields: 'problem, solution, answer, subject, level, unique_id' },
  { name: 'omi2', source: 'omi2', fields: 'problem, generated_solution, expected_answer, problem_source' },
];
const EVAL_SETS = ['gsm8k-test', 'math500-test'];

export async function dataCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      raw: { type: 'string', default: 'data/raw' },
      out: { type: 'string', default: 'data/normalized' },
      'skip-fetch': { type: 'boolean', default: false },
      seed: { type: 'string', default: '0' },
      'omi2-per-source': { type: 'string', default: '12500' },
      python: { type: 'string', default: DEFAULT_PYTHON },
    },
    USAGE,
  );
  if (positionals[0] !== 'prepare' || positionals.length > 1) throw new UsageError(`usage: ${USAGE}`);
  const seed = Number(values.seed);
  const perSource = Number(values['omi2-per-source']);
  if (!Number.isInteger(seed) || seed < 0) throw new UsageError(`--seed: expected a non-negative integer, got "${values.seed}"`);
  if (!Number.isInteger(perSource) || perSource < 1) throw new UsageError(`--omi2-per-source: expected a positive integer, got "${values['omi2-per-source']}"`);
  const log = (line: string) => process.stderr.write(`${line}\n`);

  if (!values['skip-fetch']) {
    const fetched = await runProcess(values.python, ['-m', 'prm_raft.fetch_datasets', '--out', values.raw], {
      onStdoutLine: (line) => log(`fetch: ${line}`),
    });
    if (fetched.exitCode !== 0) {
      throw new UsageError(
        `fetching the public datasets failed (exit ${fetched.exitCode}):\n${fetched.stderrTail}\n\n` +
          `To supply them by hand, put these JSONL files in ${values.raw}/ and run \`prm-raft data prepare --skip-fetch\`:\n` +
          RAW_FILES.map((f) => `  ${f.name}.jsonl  ${f.fields}`).join('\n') +
          '\n(GSM8K and MATH500 copies may be at ../shared/data/gsm8k/{train,test}.jsonl and ../shared/data/math500/test.jsonl.)',
      );
    }
  }

  await mkdir(values.out, { recursive: true });
  const evalQuestions: string[] = [];
  let written = 0;
  for (const file of RAW_FILES) {
    const rawPath = join(values.raw, `${file.name}.jsonl`);
    if (!(await exists(rawPath))) {
      log(`${file.name}: skipped, ${rawPath} not found (fields: ${file.fields})`);
      continue;
    }
    const outPath = join(values.out, `${file.name}.jsonl`);
    if (file.source === 'omi2') {
      // Only after the evaluation sets, so none of their questions is drawn for training.
      const draw = createOmi2Draw({ perSource: { augmented_math: perSource, augmented_gsm8k: perSource }, seed, exclude: evalQuestions });
      for await (const p of streamProblems(rawPath, 'omi2', { name: file.name })) draw.add(p);
      const { records, stats } = draw.finish();
      await writeJsonlAtomic(outPath, records);
      for (const [source, s] of Object.entries(stats.perSource)) {
        log(`omi2 ${source}: drew ${s.drawn} of ${s.available} distinct questions${s.shortfall > 0 ? ` (${s.shortfall} short of ${s.requested})` : ''}`);
      }
      log(`omi2: skipped ${stats.duplicateRecords} duplicate and ${stats.excludedRecords} evaluation-set questions → ${outPath}`);
      written += 1;
      continue;
    }
    const records: ProblemRecord[] = [];
    for await (const p of streamProblems(rawPath, file.source, { name: file.name })) records.push(p);
    if (EVAL_SETS.includes(file.name)) evalQuestions.push(...records.map((r) => r.question));
    await writeJsonlAtomic(outPath, records);
    log(`${file.name}: ${records.length} problems → ${outPath}`);
    written += 1;
  }
  if (written === 0) throw new UsageError(`no raw dataset files in ${values.raw}/; expected ${RAW_FILES.map((f) => `${f.name}.jsonl`).join(', ')}`);
  return 0;
}
