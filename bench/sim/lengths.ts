// Response shapes drawn from real solutions: GSM8K train and MATH500 (../shared/data), one entry per solution,
// the token count of each of its steps (lines). The simulated policy answers with that many steps of that length.
import { readFileSync } from 'node:fs';
import type { SimConfig } from './config.js';

/** One real solution: tokens per step (line), the final answer line included. */
export type Shape = number[];
export type Kind = 'gsm8k' | 'math';
export type Shapes = Record<Kind, Shape[]>;

/** The step token counts of a solution text: its non-blank lines, calculator annotations <<…>> left out. */
export function shapeOf(solution: string, charsPerToken: number, scale = 1): Shape {
  return solution
    .replace(/<<[^>]*>>/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => Math.max(1, Math.round((l.length / charsPerToken) * scale)));
}

export function loadShapes(lengths: SimConfig['lengths']): Shapes {
  const read = (path: string, field: string) =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => shapeOf(String((JSON.parse(l) as Record<string, unknown>)[field] ?? ''), lengths.charsPerToken, lengths.scale))
      .filter((s) => s.length > 0);
  return { gsm8k: read(lengths.gsm8k, 'answer'), math: read(lengths.math, 'solution') };
}

/** The kind of a bench question: its "[math …]" / "[gsm8k …]" tag (written by the bench's data files). */
export function kindOf(prompt: string): Kind {
  return /\[math #/.test(prompt) ? 'math' : 'gsm8k';
}

/** The reference answer a bench question carries in its tag ("[gsm8k #42 gt-7]"), or null. */
export function answerOf(prompt: string): string | null {
  return /\[(?:gsm8k|math) #(-?\d+)[\] ]/.exec(prompt)?.[1] ?? null;
}

/** Mean total tokens of a solution of each kind. */
export function meanTokens(shapes: Shape[]): number {
  return shapes.reduce((n, s) => n + s.reduce((a, b) => a + b, 0), 0) / Math.max(1, shapes.length);
}

/**
 * A simulated response: the steps of a drawn real solution after the `done` steps a prefix already has (at least
 * one), each a short line with its real token count as a marker, then the final answer line; cut at `maxTokens`.
 */
export function respond(shape: Shape, done: number, answer: string, right: boolean, maxTokens: number, random: () => number): { text: string; tokens: number; truncated: boolean } {
  const rest = shape.slice(0, -1).slice(done);
  // The final answer line's tokens ride on the step before it: "#### N" itself stays plain for the grader.
  const ts = rest.length > 0 ? [...rest] : [Math.max(1, shape[0] ?? 10)];
  ts[ts.length - 1] = (ts[ts.length - 1] as number) + (shape.length > 1 ? (shape[shape.length - 1] as number) : 0);
  const lines: string[] = [];
  let tokens = 0;
  for (const t of ts) {
    if (tokens + t > maxTokens) {
      const cut = maxTokens - tokens;
      lines.push(`${Math.floor(random() * 90) + 10} + [${cut} tok]`);
      return { text: lines.join('\n'), tokens: maxTokens, truncated: true };
    }
    const a = Math.floor(random() * 90) + 10;
    const b = Math.floor(random() * 90) + 10;
    lines.push(`${a} + ${b} = ${a + b} [${t} tok]`);
    tokens += t;
  }
  const final = right ? answer : String(Number(answer) + 1 + Math.floor(random() * 9));
  lines.push(`#### ${final}`);
  return { text: lines.join('\n'), tokens, truncated: false };
}
