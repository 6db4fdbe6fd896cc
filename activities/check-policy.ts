// Stage: before sampling, make sure the policy server serves the model and its context fits max_tokens.
import { BadInputError } from '../core/errors.js';
import { PolicyClient, type PolicyEndpoint } from '../clients/policy.js';
import { withFailureClasses } from './failures.js';

export interface PolicyCheck {
  /** Identifies the served weights in cache keys: the model name and where the server loaded it from. */
  fingerprint: string;
  maxModelLen?: number;
}

export async function checkPolicy(input: { policy: PolicyEndpoint; maxTokens: number }): Promise<PolicyCheck> {
  return withFailureClasses(async () => {
    const replicas = await new PolicyClient(input.policy).listModels();
    const roots = new Set<string>();
    let maxModelLen: number | undefined;
    for (const { url, models } of replicas) {
      const served = models.find((m) => m.id === input.policy.model);
      if (!served) {
        throw new BadInputError(
          `policy server ${url} does not serve model "${input.policy.model}" (it serves: ${models.map((m) => m.id).join(', ') || 'nothing'}); set policy.model or --policy to one of those`,
        );
      }
      if (served.maxModelLen !== undefined && input.maxTokens >= served.maxModelLen) {
        throw new BadInputError(
          `evaluation.maxTokens is ${input.maxTokens} but model "${served.id}" at ${url} has a context of ${served.maxModelLen} tokens; lower maxTokens`,
        );
      }
      roots.add(served.root ?? served.id);
      maxModelLen = served.maxModelLen;
    }
    if (roots.size > 1) {
      throw new BadInputError(`the policy replicas serve different weights under "${input.policy.model}": ${[...roots].join(', ')}`);
    }
    return { fingerprint: `${input.policy.model}@${[...roots][0]}`, maxModelLen };
  });
}
