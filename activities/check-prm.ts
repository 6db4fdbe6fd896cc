// Stage: before scoring, make sure every PRM replica is up and serves the configured model.
import { BadInputError, TransientError } from '../core/errors.js';
import type { PrmEndpoint } from '../core/raft.js';
import { contentKey } from '../store/files.js';
import { withFailureClasses } from './failures.js';

export async function checkPrm(input: { prm: PrmEndpoint }): Promise<{ fingerprint: string }> {
  return withFailureClasses(async () => {
    const roots = new Set<string>();
    for (const base of input.prm.baseUrls) {
      const url = `${base.replace(/\/$/, '')}/v1/models`;
      let res: Response;
      try {
        res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        throw new TransientError(`PRM server ${base} unreachable: ${(err as Error).message}`);
      }
      if (!res.ok) throw new TransientError(`PRM server ${url} answered ${res.status}`);
      const body = (await res.json()) as { data?: Array<{ id: string; root?: string }> };
      const served = body.data?.find((m) => m.id === input.prm.model);
      if (!served) {
        throw new BadInputError(`PRM server ${base} does not serve "${input.prm.model}" (it serves: ${body.data?.map((m) => m.id).join(', ') || 'nothing'}); fix prm.model`);
      }
      roots.add(served.root ?? served.id);
    }
    if (roots.size > 1) throw new BadInputError(`the PRM replicas serve different weights under "${input.prm.model}": ${[...roots].join(', ')}`);
    // Scores are cached by this: serve changed weights under a new name or path. Through vLLM's Pooling API the
    // formatting (prompt, step tag, which probability) changes the scores too.
    const format = input.prm.vllmPooling ? `+vllm-pooling:${contentKey(input.prm.vllmPooling)}` : '';
    return { fingerprint: `${input.prm.model}@${[...roots][0]}${format}` };
  });
}
