// Stage (PRL, issue 14): the per-token log-probs of every response of one shard under one checkpoint, by the
// forward-pass job (python -m prm_raft.logprobs) on the gpu queue, content-addressed by the shard, the checkpoint,
// the prompt template and the precision. Called once with the current policy and once with the initial one: the
// initial policy's log-probs of a shard are computed once and reused by every later PRL stage on it. The shard is a
// samples shard (RAFT: PRL selection) or a labels shard (labelPrmData's solutions: PRL labels beside ER labels).
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BadInputError, TransientError } from '../core/errors.js';
import { cacheDir } from '../core/layout.js';
import { LogprobLine, LogprobShardResult, type LogprobJobSettings } from '../core/prl.js';
import { renderPrompt, type PromptTemplate } from '../core/prompts.js';
import type { LabeledSolution } from '../core/labeling.js';
import type { ArtifactManifest } from '../core/manifests.js';
import { contentKey, exists, readJson, readJsonlLines, toJsonl, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import type { SampledPrompt } from './sample-shard.js';
import { runTrainingJob } from './training-job.js';

export type { TrainingHeartbeat as LogprobHeartbeat } from './training-job.js';

/** A shard's file and where it belongs; a SampleShardResult or a LabelShardResult is one. */
export type ShardRef = ArtifactManifest & { dataset: string; shard: number };

/** What a shard's lines are: prompts with their sampled responses, or labeled solutions. */
export type ShardKind = 'samples' | 'labels';

export interface LogprobShardInput {
  shard: ShardRef;
  kind: ShardKind;
  /** A transformers checkpoint: the current policy or the initial one. */
  checkpoint: string;
  /** The template the responses were sampled (or the solutions generated) with: the prompt is their context. */
  prompt: PromptTemplate;
  logprobs: LogprobJobSettings;
  python: string;
  storeRoot: string;
}

/** How a response is named in every per-response file: `<prompt id>/<response index>`, as the scores name it. */
export function responseId(promptId: string, index: number): string {
  return `${promptId}/${index}`;
}

/**
 * The log-prob job's input lines for one line of a shard: each sampled response of a prompt (named by
 * `responseId`), or the one solution of a labels line (named by its own id, already `problem id/solution index`).
 */
export function jobInputLines(kind: ShardKind, line: unknown, prompt: PromptTemplate): Array<{ id: string; prompt: string; completion: string }> {
  if (kind === 'labels') {
    const s = line as LabeledSolution;
    return [{ id: s.id, prompt: renderPrompt(prompt, s.question), completion: s.solution }];
  }
  const p = line as SampledPrompt;
  const rendered = renderPrompt(prompt, p.question);
  return p.responses.map((r, j) => ({ id: responseId(p.id, j), prompt: rendered, completion: r.text }));
}

export async function logprobShard(input: LogprobShardInput): Promise<LogprobShardResult> {
  return withFailureClasses(async () => {
    const { shard, logprobs: settings } = input;
    const checkpoint = resolve(input.checkpoint);
    if (!(await exists(join(checkpoint, 'config.json')))) {
      throw new BadInputError(
        `PRL needs the policy's own log-probs, so ${input.checkpoint} must be a local transformers checkpoint (a directory with config.json) on this worker; ${checkpoint} is not one. A model reached only through a server's API cannot be scored`,
      );
    }
    // Batch sizes and the device change only the throughput, not the values; bf16 changes the values.
    const key = contentKey({ v: 1, shard: shard.sha256, kind: input.kind, checkpoint, prompt: input.prompt, bf16: settings.bf16 });
    const dir = resolve(cacheDir(input.storeRoot, 'logprobs', key));
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...LogprobShardResult.parse(await readJson(resultPath)), cached: true };

    // The job's input: one line per response, in the shard's order (a prompt the server refused has none).
    const lines: Array<{ id: string; prompt: string; completion: string }> = [];
    for await (const { text } of readJsonlLines(shard.uri)) lines.push(...jobInputLines(input.kind, JSON.parse(text), input.prompt));
    const ids = lines.map((l) => l.id);
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

    // The job writes in length order; the stage's file is in the shard's order, one line per response.
    const byId = new Map<string, LogprobLine>();
    for await (const { line, text } of readJsonlLines(partialPath)) {
      const parsed = LogprobLine.safeParse(JSON.parse(text));
      if (!parsed.success) throw new BadInputError(`${partialPath}:${line}: not a log-prob line: ${parsed.error.issues[0]?.message}`);
      byId.set(parsed.data.id, parsed.data);
    }
    const missing = ids.filter((id) => !byId.has(id));
    if (missing.length > 0) throw new TransientError(`log-prob job finished without ${missing.length} of ${ids.length} responses (first: ${missing[0]})`);
    const ordered = ids.map((id) => byId.get(id) as LogprobLine);
    const result: LogprobShardResult = {
      ...(await writeJsonlAtomic(join(dir, 'logprobs.jsonl'), ordered)),
      dataset: shard.dataset,
      shard: shard.shard,
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
