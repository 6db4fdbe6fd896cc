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
  // SmolLM2-Instruct's chat template (ChatML with its default system prompt) around one user turn, written out: the
  // completions API takes text, so the template is applied here, once, and the server adds nothing. The turn ends
  // with <|im_end|>, the model's EOS, which the server stops at; the stop strings are for servers that do not.
  'smollm2-chat': {
    template:
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
      '<|im_start|>user\n{question}\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n' +
      '<|im_start|>assistant\n',
    stop: ['<|im_end|>', '<|im_start|>'],
  },
};
