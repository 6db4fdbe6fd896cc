// Bounded fan-out, safe inside workflows: no timers, no I/O, deterministic order of starts.

/** Runs `work` on every job with at most `width` in flight; results come back in job order. */
export async function runSlidingWindow<J, R>(jobs: readonly J[], width: number, work: (job: J, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(jobs.length);
  let next = 0;
  const lane = async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await work(jobs[i] as J, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, width), jobs.length) }, lane));
  return results;
}
