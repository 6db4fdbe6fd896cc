// Prompt templates: the schema, literal rendering, and the presets the paper's policies expect.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PROMPT_PRESETS, PromptTemplate, renderPrompt } from '../../core/prompts.js';

describe('PromptTemplate', () => {
  it('accepts a template with one placeholder', () => {
    expect(PromptTemplate.parse({ template: 'Q: {question}\nA:', stop: ['\n'] })).toEqual({
      template: 'Q: {question}\nA:',
      stop: ['\n'],
    });
  });

  it.each([
    [{ template: 'Q:', stop: [] }, '"{question}" exactly once'],
    [{ template: '{question} {question}', stop: [] }, '"{question}" exactly once'],
    [{ template: '{question}' }, 'stop: '],
    [{ template: '{question}', stop: [''] }, 'stop.0: '],
    [{ template: '{question}', stop: [], extra: 1 }, 'extra'],
  ])('rejects %j', (input, problem) => {
    const result = PromptTemplate.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n')).toContain(problem);
  });

  it('validates every preset', () => {
    for (const preset of Object.values(PROMPT_PRESETS)) expect(PromptTemplate.parse(preset)).toEqual(preset);
  });
});

describe('renderPrompt', () => {
  it('renders the presets exactly', () => {
    expect(renderPrompt(PROMPT_PRESETS.metamath!, 'What is 2+2?')).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
        "### Instruction:\nWhat is 2+2?\n\n### Response: Let's think step by step.",
    );
    expect(renderPrompt(PROMPT_PRESETS['deepseek-math-instruct']!, 'What is 2+2?')).toBe(
      'User: What is 2+2?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:',
    );
    expect(renderPrompt(PROMPT_PRESETS.tinymath!, 'What is 2+2?')).toBe('Question: What is 2+2?\nAnswer:\n');
  });

  it('has the stop sequences of each preset', () => {
    expect(PROMPT_PRESETS.metamath?.stop).toEqual(['Instruction:', 'Response:', '</s>']);
    expect(PROMPT_PRESETS['deepseek-math-instruct']?.stop).toEqual(['<｜end▁of▁sentence｜>']);
    expect(PROMPT_PRESETS.tinymath?.stop).toEqual(['\n\n', 'Question:']);
  });

  it('inserts questions with braces, dollars and replacement patterns literally', () => {
    const t = { template: '<{question}>', stop: [] };
    expect(renderPrompt(t, "$$ $& $' {question} \\{x\\}")).toBe("<$$ $& $' {question} \\{x\\}>");
  });

  it('is the template around the question, verbatim, for any question', () => {
    const template = fc.tuple(fc.string(), fc.string()).filter(([a, b]) => !(a + b).includes('{question}'));
    fc.assert(
      fc.property(template, fc.string(), ([before, after], question) => {
        expect(renderPrompt({ template: `${before}{question}${after}`, stop: [] }, question)).toBe(
          before + question + after,
        );
      }),
    );
  });
});
