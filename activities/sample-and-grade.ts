// Shared by the evaluation and sampling stages: ask the policy for every problem of a shard, resumably,
// then grade every response in one grader process. Not an activity itself.
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gradeFile } from '../clients/grader.js';
import { PolicyClient, type PolicyEndpoint, type SamplingParams } from '../clients/policy.js';
import { BadInputError } from '../core/errors.js';
import type { ProblemRecord } from '../core/records.js';
import { runSlidingWindow } from '../core/sliding-window.js';
import { readJsonlLines, toJsonl, writeJsonlAtomic } from '../store/files.js';
import { recoverPartial } from '../store/partial.js';
import { heartbeatWhile } from './heartbeat.js';

export interface GradedResponse {
  index: number;
  text: string;
  finishReason: string;
  extracted: string | null;
  correct: boolean;
}

/** What can be asked and graded: a problem, or a step prefix of a solution to one. */
export type Gradable = Pick<ProblemRecord, 'id' | 'answer' | 'answerKind'>;

export interface SampledProblem<P extends Gradable = ProblemRecord> {
  problem: P;
  responses: GradedResponse[];
  /** Why the server refused this problem (e.g. a prompt longer than the context); it has no responses then. */
  error?: string;
}

interface Asked {
  id: string;
  responses: Array<{ text: string; finishReason: string }>;
  error?: string;
}

export interface SampleAndGradeJob<P extends Gradable> {
  problems: P[];
  /** The text sent for a problem. */
  promptOf: (problem: P) => string;
  /** Text the response continues (a solution prefix): graded together with the response. */
  gradePrefixOf?: (problem: P) => string;
  params: SamplingParams;
  policy: PolicyEndpoint & { maxConcurrency: number; promptsPerRequest: number };
  /** Scratch folder of this shard: the partial answers live here until the caller writes its output. */
  dir: string;
  python: string;
  graderWorkers: number;
  signal: AbortSignal;
  onProgress: (done: number, total: number) => void;
}

export async function sampleAndGrade<P extends Gradable>(job: SampleAndGradeJob<P>): Promise<SampledProblem<P>[]> {
  const partialPath = join(job.dir, 'samples.partial.jsonl');
  const done = await recoverPartial(partialPath, (x): x is Asked => Array.isArray((x as Asked | null)?.responses) && typeof (x as Asked).id === 'string');
  const todo = job.problems.filter((p) => !done.has(p.id));
  // Beats also while a request retries inside the client and while the grader runs.
  return heartbeatWhile(() => job.onProgress(done.size, job.problems.length), async () => {
    const policy = new PolicyClient(job.policy);
    const ask = async (group: P[]): Promise<Asked[]> => {
      try {
        const samples = await policy.complete(group.map(job.promptOf), job.params);
        return group.map((p, i) => ({ id: p.id, responses: (samples[i] ?? []).map((s) => ({ text: s.text, finishReason: s.finishReason })) }));
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        // One bad prompt must not sink its neighbours: ask alone, and record a refusal instead of dropping it.
        if (group.length > 1) return (await Promise.all(group.map((p) => ask([p])))).flat();
        return [{ id: (group[0] as P).id, responses: [], error: err.message }];
      }
    };
    await runSlidingWindow(chunk(todo, job.policy.promptsPerRequest), job.policy.maxConcurrency, async (group) => {
      job.signal.throwIfAborted();
      const asked = await ask(group);
      await appendFile(partialPath, toJsonl(asked));
      for (const a of asked) done.set(a.id, a);
      job.onProgress(done.size, job.problems.length);
    });

    const refused = job.problems.filter((p) => done.get(p.id)?.error !== undefined);
    if (refused.length === job.problems.length && refused.length > 0) {
      // Every prompt refused: the request itself is wrong (model, parameters), not the prompts.
      throw new BadInputError(done.get(refused[0]!.id)?.error ?? 'the policy server refused every prompt');
    }

    const gradeIn = join(job.dir, 'grade.in.jsonl');
    const gradeOut = join(job.dir, 'grade.out.jsonl');
    await writeJsonlAtomic(
      gradeIn,
      job.problems.flatMap((p) =>
        (done.get(p.id)?.responses ?? []).map((r, j) => ({ id: `${p.id}/${j}`, kind: p.answerKind, prediction: (job.gradePrefixOf?.(p) ?? '') + r.text, reference: p.answer })),
      ),
    );
    await gradeFile({ python: job.python, inPath: gradeIn, outPath: gradeOut, workers: job.graderWorkers, signal: job.signal });
    const graded = new Map<string, { extracted: string | null; correct: boolean }>();
    for await (const { text } of readJsonlLines(gradeOut)) {
      const g = JSON.parse(text) as { id: string; extracted: string | null; correct: boolean };
      graded.set(g.id, g);
    }
    return job.problems.map((problem) => {
      const asked = done.get(problem.id);
      const responses = (asked?.responses ?? []).map((r, index) => {
        const g = graded.get(`${problem.id}/${index}`);
        return { index, text: r.text, finishReason: r.finishReason, extracted: g?.extracted ?? null, correct: g?.correct ?? false };
      });
      return { problem, responses, ...(asked?.error !== undefined ? { error: asked.error } : {}) };
    });
  });
}

/** Removes the scratch files once the caller's output is safely written. */
export async function clearScratch(dir: string): Promise<void> {
  await Promise.all(['samples.partial.jsonl', 'grade.in.jsonl', 'grade.out.jsonl'].map((f) => rm(join(dir, f), { force: true })));
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The problems at positions [start, end) of a normalized dataset file. */
export async function readProblemRange(uri: string, start: number, end: number, parse: (text: string) => ProblemRecord): Promise<ProblemRecord[]> {
  const problems: ProblemRecord[] = [];
  let index = 0;
  for await (const { text } of readJsonlLines(uri)) {
    if (index >= start && index < end) problems.push(parse(text));
    index += 1;
    if (index >= end) break;
  }
  return problems;
}
