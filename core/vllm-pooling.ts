// Off-the-shelf PRMs served by vLLM's Pooling API (`POST /pooling`), mapped to one score in [0, 1] per step.
// Pure: the request body from items, step scores from a reply; the PRM client does the I/O.
//
// What vLLM does with a process reward model (https://docs.vllm.ai/en/latest/models/pooling_models/reward/ and
// the Pooling API in https://docs.vllm.ai/en/latest/models/pooling_models/): the `token_classify` task with STEP
// pooling keeps the output at every occurrence of the model's step tag token, a probability vector each.
// Qwen2.5-Math-PRM-7B (Qwen2ForProcessRewardModel, step tag `<extra_0>`) answers [p(wrong), p(right)] per tag
// (https://huggingface.co/Qwen/Qwen2.5-Math-PRM-7B); Math-Shepherd, served with
// `--pooler-config '{"pooling_type": "STEP", "step_tag_id": 12902, "returned_token_ids": [648, 387]}'`, answers
// the softmax over its `+` and `-` tokens, [p(+), p(-)], per `ки` (https://huggingface.co/peiyi9979/math-shepherd-mistral-7b-prm).
import { z } from 'zod';
import { BadInputError } from './errors.js';

/** How one model wants a question and its steps written, and which probability means "this step is right". */
export const VllmPoolingConfig = z.strictObject({
  /** The whole text the model reads, chat template included: `{question}` and `{steps}` each once. */
  prompt: z.string().refine((t) => t.split('{question}').length === 2 && t.split('{steps}').length === 2, {
    error: 'prompt must contain "{question}" and "{steps}" exactly once each',
  }),
  /** Written after every step, verbatim (Qwen2.5-Math-PRM: "<extra_0>"; Math-Shepherd: " ки", the space included). */
  stepTag: z.string().refine((t) => t.trim().length > 0, { error: 'expected the step tag, such as "<extra_0>"' }),
  /** Between one step's tag and the next step (Qwen2.5-Math-PRM: ""; Math-Shepherd: "\n"). */
  stepSeparator: z.string().default(''),
  /** Which of the two probabilities vLLM answers per step tag is the step being right (Qwen: 1; Math-Shepherd: 0). */
  positiveIndex: z.literal([0, 1]),
});
export type VllmPoolingConfig = z.infer<typeof VllmPoolingConfig>;

export interface PoolingItem {
  id: string;
  question: string;
  steps: string[];
}

/** One prompt per item, in item order: vLLM scores a list of inputs in one request. */
export function poolingRequest(model: string, format: VllmPoolingConfig, items: PoolingItem[]) {
  return { model, input: items.map((item) => poolingPrompt(format, item)), task: 'token_classify' };
}

export function poolingPrompt(format: VllmPoolingConfig, item: PoolingItem): string {
  // A tag inside the text would be scored as a step of its own: remove it so tags and steps stay one to one.
  const tag = format.stepTag.trim();
  const clean = (text: string) => text.split(tag).join('');
  const steps = item.steps.map((s) => clean(s) + format.stepTag).join(format.stepSeparator);
  const values: Record<string, string> = { question: clean(item.question), steps };
  // One pass, so a "{steps}" inside a question stays text.
  return format.prompt.replace(/\{(question|steps)\}/g, (_, name: string) => values[name] as string);
}

/**
 * vLLM's PoolingResponse (vllm/entrypoints/pooling/pooling/protocol.py): `data[i].data` is the nested list for
 * input `index`. Not strict: vLLM versions add fields (`id`, `created`, `usage` details) that mean nothing here.
 */
export const PoolingReply = z.object({
  model: z.string(),
  data: z.array(z.object({ index: z.int().nonnegative(), data: z.array(z.array(z.number().min(0).max(1))) })),
});
export type PoolingReply = z.infer<typeof PoolingReply>;

/** Step scores per item, in item order; `where` names the server and model in every error. */
export function stepScoresFromPooling(format: VllmPoolingConfig, items: PoolingItem[], reply: PoolingReply, where: string): number[][] {
  if (reply.data.length !== items.length) throw new BadInputError(`${where} answered ${reply.data.length} outputs for ${items.length} inputs`);
  const byIndex = new Map(reply.data.map((d) => [d.index, d.data]));
  return items.map((item, i) => {
    const perTag = byIndex.get(i);
    if (!perTag) throw new BadInputError(`${where} answered no output for item "${item.id}" (input ${i})`);
    if (perTag.length !== item.steps.length) {
      throw new BadInputError(
        `${where} answered ${perTag.length} step scores for item "${item.id}" with ${item.steps.length} steps: the step tag ${JSON.stringify(format.stepTag)} must be the model's step token (check prm.vllmPooling and vLLM's --pooler-config step_tag_id)`,
      );
    }
    return perTag.map((probs, s) => {
      if (probs.length !== 2) {
        throw new BadInputError(
          `${where} answered ${probs.length} probabilities at step ${s + 1} of item "${item.id}", expected 2 (for Math-Shepherd set returned_token_ids in vLLM's --pooler-config)`,
        );
      }
      return probs[format.positiveIndex] as number;
    });
  });
}
