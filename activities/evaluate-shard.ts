// Stage: one shard of an evaluation set — greedy samples, graded, written once; a retry keeps finished questions.
import { Context } from '@temporalio/activity';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gradeFile } from '../clients/grader.js';
import { PolicyClient } from '../clients/policy.js';
import type { EvaluatePolicyInput, ShardHeartbeat, ShardPlan } from '../core/evaluation.js';
import { tallyResults } from '../core/evaluation.js';
import { cacheDir } from '../core/layout.js';
import { EvalResultRecord, EvalShardResult, type DatasetManifest } from '../core/manifests.js';
import { renderPrompt } from '../core/prompts.js';
import { ProblemRecord } from '../core/records.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { contentKey, exists, readJson, readJsonlLines, sha256, toJsonl, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';

export type EvaluateShardInput = EvaluatePolicyInput & { dataset: DatasetManifest; shard: ShardPlan; policyFingerprint: string };

interface Sampled {
  id: string;
  prediction: string;
  finishReason: string;
}

export async function evaluateShard(input: EvaluateShardInput): Promise<EvalShardResult> {
  return withFailureClasses(async () => {
    const { dataset, shard } = input;
    const key = contentKey({
      v: 1,
      policy: input.policyFingerprint,
      prompt: input.prompt,
      maxTokens: input.evaluation.maxTokens,
      seed: input.evaluation.seed,
      dataset: dataset.sha256,
      start: shard.start,
      end: shard.end,
    });
    const dir = cacheDir(input.storeRoot, 'eval-shards', key);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...EvalShardResult.parse(await readJson(resultPath)), cached: true };

    const problems = await readShardProblems(dataset.uri, shard);
    const partialPath = join(dir, 'samples.partial.jsonl');
    const done = await recoverFinishedSamples(partialPath);
    const todo = problems.filter((p) => !done.has(p.id));
    const ctx = Context.current();
    const beat = () => ctx.heartbeat({ dataset: dataset.name, shard: shard.index, done: done.size, total: problems.length } satisfies ShardHeartbeat);
    beat();

    const policy = new PolicyClient(input.policy);
    const chunks = chunk(todo, input.policy.promptsPerRequest);
    await runSlidingWindow(chunks, input.policy.maxConcurrency, async (group) => {
      ctx.cancellationSignal.throwIfAborted();
      const samples = await policy.complete(
        group.map((p) => renderPrompt(input.prompt, p.question)),
        // Greedy means temperature 0 said out loud: servers default to 1.
        { n: 1, temperature: 0, topP: 1, maxTokens: input.evaluation.maxTokens, stop: input.prompt.stop, seed: input.evaluation.seed },
      );
      const finished: Sampled[] = group.map((p, i) => {
        const s = samples[i]?.[0];
        return { id: p.id, prediction: s?.text ?? '', finishReason: s?.finishReason ?? 'missing' };
      });
      await appendFile(partialPath, toJsonl(finished));
      for (const f of finished) done.set(f.id, f);
      beat();
    });

    const gradeIn = join(dir, 'grade.in.jsonl');
    const gradeOut = join(dir, 'grade.out.jsonl');
    await writeJsonlAtomic(
      gradeIn,
      problems.map((p) => ({ id: p.id, kind: p.answerKind, prediction: done.get(p.id)?.prediction ?? '', reference: p.answer })),
    );
    await gradeFile({ python: input.python, inPath: gradeIn, outPath: gradeOut, workers: input.grader.workers, signal: ctx.cancellationSignal });
    const graded = new Map<string, { extracted: string | null; correct: boolean }>();
    for await (const { text } of readJsonlLines(gradeOut)) {
      const g = JSON.parse(text) as { id: string; extracted: string | null; correct: boolean };
      graded.set(g.id, g);
    }

    const records: EvalResultRecord[] = problems.map((p) => {
      const s = done.get(p.id);
      const g = graded.get(p.id);
      return EvalResultRecord.parse({
        id: p.id,
        question: p.question,
        reference: p.answer,
        prediction: s?.prediction ?? '',
        finishReason: s?.finishReason ?? 'missing',
        extracted: g?.extracted ?? null,
        correct: g?.correct ?? false,
        subject: p.meta?.subject,
        level: p.meta?.level,
      });
    });
    const text = toJsonl(records);
    const uri = join(dir, 'results.jsonl');
    await writeFileAtomic(uri, text);
    const result: EvalShardResult = {
      uri,
      count: records.length,
      sha256: sha256(text),
      dataset: dataset.name,
      shard: shard.index,
      ...tallyResults(records),
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await Promise.all([partialPath, gradeIn, gradeOut].map((p) => rm(p, { force: true })));
    return result;
  });
}

async function readShardProblems(uri: string, shard: ShardPlan): Promise<ProblemRecord[]> {
  const problems: ProblemRecord[] = [];
  let index = 0;
  for await (const { text } of readJsonlLines(uri)) {
    if (index >= shard.start && index < shard.end) problems.push(ProblemRecord.parse(JSON.parse(text)));
    index += 1;
    if (index >= shard.end) break;
  }
  return problems;
}

/**
 * Samples a previous attempt already wrote. A line torn by a crash is dropped (that question is sampled
 * again) and the file rewritten whole, so the next append starts on a fresh line.
 */
async function recoverFinishedSamples(path: string): Promise<Map<string, Sampled>> {
  const done = new Map<string, Sampled>();
  if (!(await exists(path))) {
    await writeFileAtomic(path, '');
    return done;
  }
  const text = await readFile(path, 'utf8');
  for (const line of text.split('\n')) {
    try {
      const s = JSON.parse(line) as Sampled;
      if (typeof s.id === 'string') done.set(s.id, s);
    } catch {
      // The torn last line.
    }
  }
  if (text !== '' && !text.endsWith('\n')) await writeFileAtomic(path, toJsonl([...done.values()]));
  return done;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
