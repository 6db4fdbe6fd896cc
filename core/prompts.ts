// Prompt templates: how a question is put to the policy, and where its answer stops.
import { z } from 'zod';

const PLACEHOLDER = '{question}';

export const PromptTemplate = z.strictObject({
  template: z.string().refine((t) => t.split(PLACEHOLDER).length === 2, {
    error: `template must contain "${PLACEHOLDER}" exactly once`,
  }),
  stop: z.array(z.string().min(1)),
});
export type PromptTemplate = z.infer<typeof PromptTemplate>;

/** The template with its placeholder replaced literally: `{`, `}` and `$` in a question mean nothing special. */
export function renderPrompt(t: PromptTemplate, question: string): string {
  const at = t.template.indexOf(PLACEHOLDER);
  if (at < 0) throw new Error(`prompt template has no "${PLACEHOLDER}"`);
  return t.template.slice(0, at) + question + t.template.slice(at + PLACEHOLDER.length);
}

// The formats the paper's policies were trained on; a policy prompted otherwise scores lower than reported.
export const PROMPT_PRESETS: Readonly<Record<string, PromptTemplate>> = {
  metamath: {
    template:
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
      "### Instruction:\n{question}\n\n### Response: Let's think step by step.",
    stop: ['Instruction:', 'Response:', '</s>'],
  },
  'deepseek-math-instruct': {
    template: 'User: {question}\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:',
    stop: ['<｜end▁of▁sentence｜>'],
  },
  tinymath: {
    template: 'Question: {question}\nAnswer:\n',
    stop: ['\n\n', 'Question:'],
  },
};
