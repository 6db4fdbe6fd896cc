// Stage: Monte-Carlo step counts for one shard of problems — K solutions each, M completions per step prefix.
import { Context } from '@temporalio/activity';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { planShards, type ShardPlan } from '../core/evaluation.js';
import {
  LabelShardResult,
  prefixJobs,
  stepCounts,
  type LabeledSolution,
  type LabelHeartbeat,
  type LabelPlan,
  type LabelPrmDataInput,
  type PrefixJob,
} from '../core/labeling.js';
import { cacheDir } from '../core/layout.js';
import type { DatasetManifest } from '../core/manifests.js';
import { renderPrompt } from '../core/prompts.js';
import { ProblemRecord } from '../core/records.js';
import { splitSteps } from '../core/steps.js';
import { contentKey, exists, readJson, readJsonlLines, writeFileAtomic, writeJsonlAtomic } from '../store/files.js';
import { withFailureClasses } from './failures.js';
import { clearScratch, readProblemRange, sampleAndGrade, type SampledProblem } from './sample-and-grade.js';

export type LabelShardCommon = Pick<LabelPrmDataInput, 'generator' | 'completer' | 'prompt' | 'labeling' | 'steps' | 'grader' | 'python' | 'storeRoot'> & {
  generatorFingerprint: string;
  completerFingerprint: string;
};
export type LabelShardInput = LabelShardCommon & { dataset: DatasetManifest; shard: ShardPlan };

/** Where a shard's counts live: keyed by everything that determines them. */
export function labelShardDir(input: LabelShardInput): string {
  const { labeling: l } = input;
  const key = contentKey({
    v: 1,
    generator: input.generatorFingerprint,
    completer: input.completerFingerprint,
    prompt: input.prompt,
    steps: input.steps,
    solutions: l.solutions,
    completions: l.completions,
    temperature: l.temperature,
    topP: l.topP,
    maxTokens: l.maxTokens,
    seed: l.seed,
    dataset: input.dataset.sha256,
    start: input.shard.start,
    end: input.shard.end,
  });
  return cacheDir(input.storeRoot, 'labels', key);
}

/** The run's list of shards and where each one's result will be, before any of them runs. */
export async function writeLabelPlan(input: { runDir: string; common: LabelShardCommon; datasets: DatasetManifest[] }): Promise<string> {
  const plan: LabelPlan = {
    shards: input.datasets.flatMap((dataset) =>
      planShards(dataset.count, input.common.labeling.shardSize).map((shard) => ({
        dataset: dataset.name,
        shard: shard.index,
        start: shard.start,
        end: shard.end,
        resultPath: join(labelShardDir({ ...input.common, dataset, shard }), 'result.json'),
      })),
    ),
  };
  const path = join(input.runDir, 'plan.json');
  await writeFileAtomic(path, JSON.stringify(plan, null, 2));
  return path;
}

export async function labelShard(input: LabelShardInput): Promise<LabelShardResult> {
  return withFailureClasses(async () => {
    const { dataset, shard, labeling } = input;
    const dir = labelShardDir(input);
    const resultPath = join(dir, 'result.json');
    if (await exists(resultPath)) return { ...LabelShardResult.parse(await readJson(resultPath)), cached: true };

    const ctx = Context.current();
    const beat = (phase: LabelHeartbeat['phase']) => (done: number, total: number) =>
      ctx.heartbeat({ dataset: dataset.name, shard: shard.index, phase, done, total } satisfies LabelHeartbeat);
    const common = { python: input.python, graderWorkers: input.grader.workers, signal: ctx.cancellationSignal };
    const sampling = { temperature: labeling.temperature, topP: labeling.topP, maxTokens: labeling.maxTokens, stop: input.prompt.stop };

    // Phase 1, kept on disk once done so a retry goes straight to the completions.
    const solutionsPath = join(dir, 'solutions.jsonl');
    let solutions: SampledProblem[];
    if (await exists(solutionsPath)) {
      solutions = [];
      for await (const { text } of readJsonlLines(solutionsPath)) solutions.push(JSON.parse(text) as SampledProblem);
    } else {
      solutions = await sampleAndGrade({
        ...common,
        problems: await readProblemRange(dataset.uri, shard.start, shard.end, (t) => ProblemRecord.parse(JSON.parse(t))),
        promptOf: (p) => renderPrompt(input.prompt, p.question),
        params: { ...sampling, n: labeling.solutions, seed: labeling.seed + shard.start },
        policy: input.generator,
        dir: join(dir, 'solutions'),
        onProgress: beat('solutions'),
      });
      await writeJsonlAtomic(solutionsPath, solutions);
      await clearScratch(join(dir, 'solutions'));
    }

    // Phase 2: one solution's prefixes are adjacent, so they go out together and share the server's prefix cache.
    const questions = new Map(solutions.map((s) => [s.problem.id, s.problem.question]));
    const jobs = solutions.flatMap(({ problem, responses }) =>
      responses.flatMap((r) => prefixJobs({ id: `${problem.id}/${r.index}`, problemId: problem.id, text: r.text, answer: problem.answer, answerKind: problem.answerKind }, input.steps)),
    );
    const completed = await sampleAndGrade<PrefixJob>({
      ...common,
      problems: jobs,
      promptOf: (j) => renderPrompt(input.prompt, questions.get(j.problemId) ?? '') + j.prefix,
      gradePrefixOf: (j) => j.prefix,
      params: { ...sampling, n: labeling.completions, seed: labeling.seed + shard.start + 1 },
      policy: input.completer,
      dir: join(dir, 'completions'),
      onProgress: beat('completions'),
    });
    const bySolution = new Map<string, { graded: Map<number, boolean[]>; errors: string[] }>();
    for (const { problem: job, responses, error } of completed) {
      const entry = bySolution.get(job.solutionId) ?? { graded: new Map<number, boolean[]>(), errors: [] as string[] };
      entry.graded.set(job.step, responses.map((r) => r.correct));
      if (error !== undefined || responses.length === 0) entry.errors.push(`step ${job.step + 1}: ${error ?? 'the completer returned no completions'}`);
      bySolution.set(job.solutionId, entry);
    }

    const lines: LabeledSolution[] = solutions.flatMap(({ problem, responses }) =>
      responses.map((r) => {
        const id = `${problem.id}/${r.index}`;
        const steps = splitSteps(r.text, input.steps);
        const entry = bySolution.get(id);
        return {
          id,
          problemId: problem.id,
          question: problem.question,
          reference: problem.answer,
          answerKind: problem.answerKind,
          solution: r.text,
          finishReason: r.finishReason,
          correct: r.correct,
          steps,
          ...(entry && entry.errors.length > 0
            ? { counts: [], error: entry.errors.join('; ') }
            : { counts: stepCounts(steps.length, entry?.graded ?? new Map(), r.correct) }),
        };
      }),
    );
    const artifact = await writeJsonlAtomic(join(dir, 'labels.jsonl'), lines);
    const complete = lines.filter((l) => l.error === undefined);
    const result: LabelShardResult = {
      ...artifact,
      dataset: dataset.name,
      shard: shard.index,
      start: shard.start,
      end: shard.end,
      problems: solutions.length,
      solutions: lines.length,
      correctSolutions: lines.filter((l) => l.correct).length,
      steps: complete.reduce((n, l) => n + l.steps.length, 0),
      completions: complete.reduce((n, l) => n + l.counts.slice(0, -1).reduce((c, s) => c + s.m, 0), 0),
      incomplete: lines.length - complete.length,
      cached: false,
    };
    await writeFileAtomic(resultPath, JSON.stringify(result, null, 2));
    await clearScratch(join(dir, 'completions'));
    await rm(solutionsPath, { force: true });
    return result;
  });
}
