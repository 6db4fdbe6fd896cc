// What a vLLM-served PRM reads: the model's prompt with every step followed by its tag, one tag per step.
import { describe, expect, it } from 'vitest';
import { poolingPrompt, type VllmPoolingConfig } from '../../core/vllm-pooling.js';

const shepherd: VllmPoolingConfig = { prompt: '{question} {steps}', stepTag: ' ки', stepSeparator: '\n', positiveIndex: 0 };

describe('poolingPrompt', () => {
  it('writes the tag after every step and the separator between them', () => {
    expect(poolingPrompt(shepherd, { id: 'a', question: 'Q?', steps: ['s1', 's2', 's3'] })).toBe('Q? s1 ки\ns2 ки\ns3 ки');
  });

  it('removes the tag from the text, so tags and steps stay one to one', () => {
    const qwen: VllmPoolingConfig = { prompt: 'U: {question}\nA: {steps}', stepTag: '<extra_0>', stepSeparator: '', positiveIndex: 1 };
    expect(poolingPrompt(qwen, { id: 'a', question: 'why <extra_0>?', steps: ['x<extra_0>y', 'z'] })).toBe('U: why ?\nA: xy<extra_0>z<extra_0>');
    expect(poolingPrompt(shepherd, { id: 'a', question: 'Q', steps: ['ки step'] })).toBe('Q  step ки');
  });

  it('puts text in literally: placeholders and replacement patterns inside a question or a step stay text', () => {
    expect(poolingPrompt(shepherd, { id: 'a', question: 'is {steps} $& $1?', steps: ['{question}'] })).toBe('is {steps} $& $1? {question} ки');
  });
});
