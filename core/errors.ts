// Error classes that decide retries: bad input is never retried, everything else may be.

/** The input or config is wrong; retrying cannot help. The message says what and where. */
export class BadInputError extends Error {
  override name = 'BadInputError';
}

/** A server, process or file failed in a way a retry may fix (crash, timeout, 5xx, 429). */
export class TransientError extends Error {
  override name = 'TransientError';
}
