// The progress line says why it stands still: activities being retried, with their attempt and root cause.
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { retryNotes } from '../../cli/watch.js';

function handleWith(pendingActivities: unknown[]): WorkflowHandle {
  return { describe: async () => ({ raw: { pendingActivities } }) } as unknown as WorkflowHandle;
}

describe('retryNotes', () => {
  it('names each retried activity with its attempt and the innermost failure message, and nothing for first attempts', async () => {
    const notes = await retryNotes(
      handleWith([
        { activityType: { name: 'sampleShard' }, attempt: 1 },
        {
          activityType: { name: 'scoreShard' },
          attempt: 3,
          lastFailure: { message: 'activity failed', cause: { message: 'PRM server http://127.0.0.1:8200 answered 500: boom\nstack…' } },
        },
        { activityType: { name: 'evaluateShard' }, attempt: 2, lastFailure: { message: 'policy server unreachable' } },
      ]),
    );
    expect(notes).toEqual([
      'scoreShard attempt 3, last failure: PRM server http://127.0.0.1:8200 answered 500: boom',
      'evaluateShard attempt 2, last failure: policy server unreachable',
    ]);
    expect(await retryNotes(handleWith([]))).toEqual([]);
  });
});
