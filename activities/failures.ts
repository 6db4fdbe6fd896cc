// Turns the project's error classes into Temporal's retry decisions at the activity boundary.
import { ApplicationFailure } from '@temporalio/common';
import { BadInputError } from '../core/errors.js';

export async function withFailureClasses<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof BadInputError) throw ApplicationFailure.nonRetryable(err.message, 'BadInput');
    throw err;
  }
}
