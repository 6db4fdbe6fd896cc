// compareEvaluations on small results files: questions gained and lost matched by id, and files that cannot be
// paired refused without retrying.
import { ApplicationFailure } from '@temporalio/common';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareEvaluations } from '../../activities/compare-evaluations.js';
import type { ArtifactManifest, EvalResultRecord } from '../../core/manifests.js';
import { toJsonl } from '../../store/files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prm-raft-compare-evals-'));
});

const graded = (id: string, correct: boolean): EvalResultRecord => ({
  id,
  question: `question ${id}`,
  reference: '1',
  prediction: correct ? 'The answer is 1' : 'The answer is 2',
  finishReason: 'stop',
  extracted: correct ? '1' : '2',
  correct,
});

/** A results file as mergeShardResults writes it. */
async function results(name: string, text: string): Promise<ArtifactManifest> {
  const uri = join(dir, `${name}.jsonl`);
  await writeFile(uri, text);
  return { uri, count: text.split('\n').filter(Boolean).length, sha256: name };
}

async function refusal(before: ArtifactManifest, after: ArtifactManifest): Promise<ApplicationFailure> {
  const error = await compareEvaluations({ dataset: 'test', before, after }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ApplicationFailure);
  expect((error as ApplicationFailure).nonRetryable).toBe(true);
  return error as ApplicationFailure;
}

describe('compareEvaluations', () => {
  it('counts the questions gained and lost, matched by id whatever the order', async () => {
    const before = await results('before', toJsonl([graded('q1', true), graded('q2', false), graded('q3', true), graded('q4', false), graded('q5', true)]));
    // Another order, and a blank line: q2 and q4 gained, q3 lost, q1 and q5 right both times.
    const after = await results('after', `${toJsonl([graded('q5', true), graded('q4', true), graded('q3', false)])}\n${toJsonl([graded('q2', true), graded('q1', true)])}`);
    expect(await compareEvaluations({ dataset: 'test', before, after })).toEqual({ dataset: 'test', total: 5, gained: 2, lost: 1 });
    // The other way round, gains are losses.
    expect(await compareEvaluations({ dataset: 'test', before: after, after: before })).toEqual({ dataset: 'test', total: 5, gained: 1, lost: 2 });
  });

  it('reads only the id and the grade: a record with a field it does not know still pairs', async () => {
    const before = await results('extra-before', toJsonl([{ ...graded('q1', false), latencyMs: 812 }]));
    const after = await results('extra-after', toJsonl([graded('q1', true)]));
    expect(await compareEvaluations({ dataset: 'test', before, after })).toEqual({ dataset: 'test', total: 1, gained: 1, lost: 0 });
  });

  it('refuses files that do not hold the same questions, naming one that differs and both files', async () => {
    const before = await results('three', toJsonl([graded('q1', true), graded('q2', true), graded('q3', false)]));
    const fewer = await results('two', toJsonl([graded('q1', true), graded('q2', false)]));
    const other = await results('other', toJsonl([graded('q1', true), graded('q2', true), graded('x9', false)]));
    expect((await refusal(before, fewer)).message).toBe(`cannot pair the two evaluations question by question: question "q3" is in ${before.uri} but not in ${fewer.uri}`);
    expect((await refusal(before, other)).message).toBe(`cannot pair the two evaluations question by question: question "x9" is in ${other.uri} but not in ${before.uri}`);
  });

  it('refuses a line that is not a graded question, with its file and line', async () => {
    const before = await results('good', toJsonl([graded('q1', true), graded('q2', true)]));
    const broken = await results('broken', `${JSON.stringify(graded('q1', true))}\n{"id":"q2","correct":"yes"}\n`);
    expect((await refusal(before, broken)).message).toMatch(new RegExp(`^${broken.uri} line 2: not a graded question \\(correct: `));
    const torn = await results('torn', `${JSON.stringify(graded('q1', true))}\n{"id":"q2","corr`);
    expect((await refusal(torn, before)).message).toBe(`${torn.uri} line 2: not JSON`);
  });
});
