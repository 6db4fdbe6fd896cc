// Stage (PRL, issue 14): the per-token log-probs of every response of one samples shard under one checkpoint, by
// the forward-pass job (python -m prm_raft.logprobs) on the gpu queue, content-addressed by the samples, the
// checkpoint, the prompt template and the precision. Called once with the current policy and once with the initial
// one: the initial policy's log-probs of a shard are computed once and reused by every later PRL stage on it.
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BadInputError, TransientError } from '../core/errors.js';
import { cacheDir } from '../core/layout.js';
import { LogprobLine, LogprobShardResult, type LogprobJobSettings } from '../core/prl.js';
import { renderPrompt, type PromptTemplate } from '../core/prompts.js';
import type { SampleShardResult } from '../core/raft.js';
import { contentKey, exists, readJson, readJsonlLines, sha256, toJsonl, writeFileAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import type { SampledPrompt } from './sample-shard.js';
import { runTrainingJob } from './training-job.js';

export type { TrainingHeartbeat as LogprobHeartbeat } from './training-job.js';

export interface LogprobShardInput {
  samples: SampleShardResult;
  /** A transformers checkpoint: the current policy or the initial one. */
  checkpoint: string;
  /** The template the responses were sampled with: the prompt is their context. */
  prompt: PromptTemplate;
  logprobs: LogprobJobSettings;
  python: string;
  storeRoot: string;
}

/** How a response is named in every per-response file: `<prompt id>/<response index>`, as the scores name it. */
export function responseId(promptId: string, index: number): string {
  return `${promptId}/${index}`;
}

export async function logprobShard(input: LogprobShardInput): Promise<LogprobShardResult> {
  return withFailureClasses(async () => {
    const { samples, logprobs: settings } = input;
    const checkpoint = resolve(input.checkpoint);
    // Batch sizes and the device change only the throughput, not the values; bf16 changes the values.
    const key = contentKey({ v: 1, samples: samples.sha256, checkpoint, prompt: input.prompt, bf16: settings.bf16 });
    const dir = resolve(cacheDir(input.storeRoot, 'logprobs', key));
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...LogprobShardResult.parse(await readJson(resultPath)), cached: true };

    // The job's input: one line per response, in the samples' order (a prompt the server refused has none).
    const ids: string[] = [];
    const lines: Array<{ id: string; prompt: string; completion: string }> = [];
    for await (const { text } of readJsonlLines(samples.uri)) {
      const p = JSON.parse(text) as SampledPrompt;
      const prompt = renderPrompt(input.prompt, p.question);
      for (const [j, r] of p.responses.entries()) {
        const id = responseId(p.id, j);
        ids.push(id);
        lines.push({ id, prompt, completion: r.text });
      }
    }
    const inputPath = join(dir, 'input.jsonl');
    const partialPath = join(dir, 'logprobs.partial.jsonl');
    await writeFileAtomic(inputPath, toJsonl(lines));

    // The job appends to the partial file and skips what it holds, so a retried attempt resumes.
    const outcome = await runTrainingJob({
      what: 'log-prob job',
      command: settings.command,
      python: input.python,
      storeRoot: input.storeRoot,
      outDir: dir,
      outOfMemoryHint: `at batchTokens ${settings.batchTokens}, maxBatchSize ${settings.maxBatchSize} (lower them)`,
      job: {
        model: checkpoint,
        input_file: inputPath,
        output_file: partialPath,
        batch_tokens: settings.batchTokens,
        max_batch_size: settings.maxBatchSize,
        bf16: settings.bf16,
        device: settings.device,
      },
    });
    if (resolve(outcome.output) !== partialPath) throw new TransientError(`log-prob job reported ${outcome.output}, expected ${partialPath}`);

    // The job writes in length order; the stage's file is in the samples' order, one line per response.
    const byId = new Map<string, LogprobLine>();
    for await (const { line, text } of readJsonlLines(partialPath)) {
      const parsed = LogprobLine.safeParse(JSON.parse(text));
      if (!parsed.success) throw new BadInputError(`${partialPath}:${line}: not a log-prob line: ${parsed.error.issues[0]?.message}`);
      byId.set(parsed.data.id, parsed.data);
    }
    const missing = ids.filter((id) => !byId.has(id));
    if (missing.length > 0) throw new TransientError(`log-prob job finished without ${missing.length} of ${ids.length} responses (first: ${missing[0]})`);
    const ordered = ids.map((id) => byId.get(id) as LogprobLine);
    const text = toJsonl(ordered);
    const uri = join(dir, 'logprobs.jsonl');
    await writeFileAtomic(uri, text);
    const result: LogprobShardResult = {
      uri,
      count: ordered.length,
      sha256: sha256(text),
      dataset: samples.dataset,
      shard: samples.shard,
      checkpoint,
      responses: ordered.length,
      tokens: ordered.reduce((n, l) => n + l.logprobs.length, 0),
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await Promise.all([partialPath, `${partialPath}.job.json`, inputPath].map((p) => rm(p, { force: true })));
    return result;
  });
}
