// Dataset loaders on fixtures in the real formats, the boxed-answer extractor, bad lines, and the OMI2 draw.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  DatasetLineError,
  drawOmi2Prompts,
  lastBoxedContent,
  normalizeQuestion,
  parseDatasetLine,
  type Omi2DrawOptions,
} from '../../core/datasets.js';
import { BadInputError } from '../../core/errors.js';
import { ProblemRecord, type DatasetSource } from '../../core/records.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/datasets', import.meta.url));

function loadFixture(source: DatasetSource, name: string = source): ProblemRecord[] {
  const file = `${name}.jsonl`;
  return readFileSync(join(FIXTURES, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => parseDatasetLine(source, line, { file, line: i + 1 }));
}

function errorOf(source: DatasetSource, line: string, lineNo = 17): DatasetLineError {
  try {
    parseDatasetLine(source, line, { file: 'data/x.jsonl', line: lineNo });
  } catch (err) {
    if (err instanceof DatasetLineError) return err;
    throw err;
  }
  throw new Error(`expected a DatasetLineError for ${line}`);
}

describe('GSM8K', () => {
  const records = loadFixture('gsm8k');

  it('reads the reference answer after "####", without thousands separators', () => {
    expect(records.map((r) => r.answer)).toEqual(['18', '3', '70000', '540', '2125']);
    expect(records.every((r) => r.answerKind === 'gsm8k' && r.source === 'gsm8k')).toBe(true);
  });

  it('derives ids from the source (or the given prefix) and the record index', () => {
    expect(records.map((r) => r.id)).toEqual(['gsm8k-0', 'gsm8k-1', 'gsm8k-2', 'gsm8k-3', 'gsm8k-4']);
    const line = JSON.stringify({ question: 'q', answer: 'a\n#### 1' });
    expect(parseDatasetLine('gsm8k', line, { file: 'f', line: 9, index: 4, idPrefix: 'gsm8k-train' }).id).toBe('gsm8k-train-4');
  });

  it('keeps the worked solution before "####" with calculator annotations stripped', () => {
    expect(records[1]?.solution).toBe(
      'It takes 2/2=1 bolt of white fiber\nSo the total amount of fabric is 2+1=3 bolts of fabric',
    );
    expect(records.some((r) => /<<|>>|####/.test(r.solution ?? ''))).toBe(false);
    expect(records[0]?.question).toMatch(/^Janet’s ducks lay 16 eggs/);
  });

  it('accepts negative and decimal answers', () => {
    const parse = (answer: string) =>
      parseDatasetLine('gsm8k', JSON.stringify({ question: 'q', answer }), { file: 'f', line: 1 }).answer;
    expect(parse('Lost 3.\n#### -3')).toBe('-3');
    expect(parse('Half.\n#### 2.5')).toBe('2.5');
    expect(parse('Many.\n####1,000,000')).toBe('1000000');
  });
});

describe('MATH (Hendrycks)', () => {
  const records = loadFixture('math');

  it('takes the answer from the last \\boxed{} or \\fbox{}, nested braces included', () => {
    expect(records.map((r) => r.answer)).toEqual(['\\frac{1}{\\sqrt{2}}', '\\{1,2\\}', '5', '14', '6']);
    expect(records.every((r) => r.answerKind === 'math')).toBe(true);
  });

  it('turns "Level N" into N, leaves "Level ?" out, and keeps the type as subject', () => {
    expect(records.map((r) => r.meta)).toEqual([
      { level: 3, subject: 'Precalculus' },
      { level: 2, subject: 'Algebra' },
      { subject: 'Prealgebra' },
      { level: 1, subject: 'Geometry' },
      { level: 5, subject: 'Number Theory' },
    ]);
  });

  it('keeps the whole solution and derives ids', () => {
    expect(records[2]).toEqual({
      id: 'math-2',
      source: 'math',
      question: 'What is $2 + 3$?',
      answer: '5',
      answerKind: 'math',
      solution: 'Adding, $2 + 3 = \\boxed 5$.',
      meta: { subject: 'Prealgebra' },
    });
  });
});

describe('MATH500', () => {
  const records = loadFixture('math500');

  it('takes ids from unique_id, and answer, level and subject from their fields', () => {
    expect(records.map((r) => r.id)).toEqual([
      'math500-test-precalculus-807',
      'math500-test-algebra-2584',
      'math500-test-algebra-2253',
      'math500-test-precalculus-695',
      'math500-test-algebra-101',
    ]);
    expect(records.map((r) => r.answer)).toEqual([
      '\\left( 3, \\frac{\\pi}{2} \\right)',
      '\\frac{14}{3}',
      '\\frac{3\\sqrt{3}}{4}',
      '(-\\infty, 0]',
      'x \\in [-2,7]',
    ]);
    expect(records.map((r) => r.meta)).toEqual([
      { level: 2, subject: 'Precalculus' },
      { level: 3, subject: 'Algebra' },
      { level: 4, subject: 'Algebra' },
      { level: 2, subject: 'Precalculus' },
      { level: 4, subject: 'Algebra' },
    ]);
    expect(records.every((r) => r.answerKind === 'math' && r.solution?.includes('\\boxed'))).toBe(true);
  });

  it('agrees with the extractor on every fixture solution', () => {
    for (const r of records) expect(lastBoxedContent(r.solution ?? '')).toBe(r.answer);
  });
});

describe('OpenMathInstruct-2', () => {
  const records = loadFixture('omi2');

  it('grades GSM8K-derived sources as numbers and the rest as LaTeX', () => {
    const kinds = Object.fromEntries(records.map((r) => [r.meta?.problemSource, r.answerKind]));
    expect(kinds).toEqual({ augmented_math: 'math', augmented_gsm8k: 'gsm8k', math: 'math', gsm8k: 'gsm8k' });
  });

  it('maps expected_answer, generated_solution and problem_source', () => {
    expect(records[0]).toEqual({
      id: 'omi2-0',
      source: 'omi2',
      question: 'Find the value of $x$ such that $\\sqrt{x+7} = 9$.',
      answer: '74',
      answerKind: 'math',
      solution: 'Squaring both sides, $x + 7 = 81$, so $x = \\boxed{74}$.',
      meta: { problemSource: 'augmented_math' },
    });
  });
});

describe('tinymath', () => {
  const records = loadFixture('tinymath');

  it('keeps the record ids, the step-per-line solution and the answer as text', () => {
    expect(records.map((r) => [r.id, r.answer])).toEqual([
      ['tinymath-train-0', '5'],
      ['tinymath-train-1', '12'],
      ['tinymath-train-2', '24'],
    ]);
    expect(records[2]?.solution?.split('\n')).toEqual(['20 - 5 = 15', '15 - 3 = 12', '12 * 2 = 24', '#### 24']);
    expect(records.every((r) => r.answerKind === 'tinymath')).toBe(true);
  });
});

it('every fixture record satisfies the ProblemRecord schema', () => {
  const all = (['gsm8k', 'math', 'math500', 'omi2', 'tinymath'] as const).flatMap((s) => loadFixture(s));
  for (const record of all) expect(ProblemRecord.parse(record)).toEqual(record);
});

describe('lastBoxedContent', () => {
  it.each([
    ['$\\boxed{\\frac{1}{\\sqrt{2}}}$', '\\frac{1}{\\sqrt{2}}'],
    ['$\\boxed{\\{1,2\\}}$', '\\{1,2\\}'],
    ['an unbalanced escape: $\\boxed{\\left\\{ x \\right.}$', '\\left\\{ x \\right.'],
    ['first $\\boxed{1}$, then $\\boxed{2}$', '2'],
    ['$\\boxed 5$.', '5'],
    ['$\\boxed{5}$ and later $\\fbox{6}$', '6'],
    ['$\\boxed {7}$', '7'],
    ['\\boxed{x}\\\\ then text', 'x'],
    ['$\\boxed{}$', ''],
    ['\\boxed{1} then \\setlength{\\fboxsep}{0pt}', '1'],
  ])('%s → %s', (text, expected) => {
    expect(lastBoxedContent(text)).toBe(expected);
  });

  it.each([['no box at all'], ['$\\boxed{\\frac{1}{2}$'], ['\\boxed$']])('%s → null', (text) => {
    expect(lastBoxedContent(text)).toBeNull();
  });

  // Balanced LaTeX-like content: letters, commands, escaped braces, line breaks, nested groups.
  const balanced: fc.Arbitrary<string> = fc.letrec<{ content: string }>((tie) => ({
    content: fc
      .array(
        fc.oneof(
          { depthSize: 'small' },
          fc.constantFrom('x', '1', '+', ' ', '\\frac', '\\sqrt', '\\{', '\\}', '\\\\', '^', '$'),
          tie('content').map((inner) => `{${inner}}`),
        ),
        { maxLength: 6 },
      )
      .map((parts) => parts.join('')),
  })).content;
  const plain = fc.string({ unit: fc.constantFrom('a', ' ', '$', '.', '{', '}', '\n') });

  it('returns X from text \\boxed{X} text for any balanced X', () => {
    fc.assert(
      fc.property(plain, balanced, plain, (before, x, after) => {
        expect(lastBoxedContent(`${before}\\boxed{${x}}${after}`)).toBe(x);
      }),
    );
  });
});

describe('bad lines', () => {
  it.each<[DatasetSource, string, string]>([
    ['gsm8k', '{"question": "q", "answer": "It is 4."}', `data/x.jsonl:17: 'answer' must end with "#### N" (got "It is 4.")`],
    ['gsm8k', '{"question": "q", "answer": "#### four"}', `'answer' must end with "#### N" (got "#### four")`],
    ['gsm8k', '{"question": "q", "answer": "#### 1,2"}', `'answer' must end with "#### N"`],
    ['gsm8k', '{"question": "q"}', `data/x.jsonl:17: 'answer' is missing`],
    ['gsm8k', '{"question": 7, "answer": "#### 1"}', `'question' must be a string (got 7)`],
    ['gsm8k', '{"question": "", "answer": "#### 1"}', `'question' must not be empty`],
    ['gsm8k', '{"question": "q", "answer": "#### 1"', 'data/x.jsonl:17: not valid JSON'],
    ['gsm8k', '[1, 2]', 'data/x.jsonl:17: expected a JSON object (got [1,2])'],
    ['math', '{"problem": "p", "level": "Level 2", "type": "Algebra", "solution": "It is 4."}', `'solution' has no \\boxed{} answer (got "It is 4.")`],
    ['math', '{"problem": "p", "level": "Level 2", "type": "Algebra", "solution": "$\\\\boxed{}$"}', `'solution' has no \\boxed{} answer`],
    ['math', '{"problem": "p", "level": "hard", "type": "Algebra", "solution": "\\\\boxed{1}"}', `'level' must be "Level N" or "Level ?" (got "hard")`],
    ['math500', '{"problem": "p", "solution": "", "answer": "1", "subject": "Algebra", "level": "3", "unique_id": "u"}', `'level' must be a number (got "3")`],
    ['math500', '{"problem": "p", "solution": "", "answer": "1", "subject": "Algebra", "level": 2.5, "unique_id": "u"}', `'level' must be an integer (got 2.5)`],
    ['omi2', '{"problem": "p", "generated_solution": "s"}', `'expected_answer' is missing; 'problem_source' is missing`],
    ['tinymath', '{"id": "t", "question": "q", "solution": "1 + 1 = 2\\n#### 3", "answer": "2"}', `'solution' must end with the line "#### 2" (got "#### 3")`],
    ['tinymath', '{"id": "t", "question": "q", "solution": "1 + 1 = 2", "answer": true}', `'answer' must be a non-empty string or an integer`],
  ])('%s: %s', (source, line, message) => {
    const err = errorOf(source, line);
    expect(err.message).toContain(message);
    expect(err.message.startsWith('data/x.jsonl:17: ')).toBe(true);
    expect([err.file, err.line]).toEqual(['data/x.jsonl', 17]);
    expect(err).toBeInstanceOf(BadInputError);
  });

  it('shows the end of a long answer, where the missing "####" belongs', () => {
    const answer = `${'step. '.repeat(30)}So the answer is 12.`;
    expect(errorOf('gsm8k', JSON.stringify({ question: 'q', answer })).message).toMatch(/\(got "….*So the answer is 12\."\)$/);
  });
});

describe('drawOmi2Prompts', () => {
  const omi2 = loadFixture('omi2');
  const evaluationQuestions = [...loadFixture('gsm8k'), ...loadFixture('math500')].map((r) => r.question);
  const options: Omi2DrawOptions = {
    perSource: { augmented_math: 2, augmented_gsm8k: 5 },
    seed: 1,
    exclude: evaluationQuestions,
  };

  it('skips evaluation questions and repeated questions, and reports a shortfall', () => {
    const { records, stats } = drawOmi2Prompts(omi2, options);
    expect(stats).toEqual({
      perSource: {
        augmented_math: { requested: 2, available: 3, drawn: 2, shortfall: 0 },
        augmented_gsm8k: { requested: 5, available: 3, drawn: 3, shortfall: 2 },
      },
      duplicateRecords: 1,
      excludedRecords: 2,
    });
    const questions = records.map((r) => normalizeQuestion(r.question));
    expect(new Set(questions).size).toBe(records.length);
    expect(questions.filter((q) => evaluationQuestions.map(normalizeQuestion).includes(q))).toEqual([]);
    expect(records.every((r) => r.meta?.problemSource?.startsWith('augmented_'))).toBe(true);
  });

  it('matches questions by lowercase text with whitespace collapsed', () => {
    expect(normalizeQuestion('  SIMPLIFY $x$\n\tfor  x. ')).toBe('simplify $x$ for x.');
  });

  const synthetic = Array.from({ length: 200 }, (_, i): ProblemRecord => ({
    id: `omi2-${i}`,
    source: 'omi2',
    question: `Question number ${i}?`,
    answer: String(i),
    answerKind: i % 2 ? 'gsm8k' : 'math',
    meta: { problemSource: i % 2 ? 'augmented_gsm8k' : 'augmented_math' },
  }));
  const ids = (seed: number) =>
    drawOmi2Prompts(synthetic, { perSource: { augmented_math: 10, augmented_gsm8k: 10 }, seed, exclude: [] }).records.map(
      (r) => r.id,
    );

  it('is deterministic for a seed and differs for another', () => {
    expect(ids(7)).toEqual(ids(7));
    expect(ids(7)).not.toEqual(ids(8));
    expect(ids(7)).toHaveLength(20);
  });

  it('keeps the input order among the drawn records', () => {
    const positions = ids(3).map((id) => Number(id.split('-')[1]));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
  });

  it('draws every distinct question about equally often across seeds', () => {
    const counts = new Map<string, number>();
    const seeds = 3000;
    for (let seed = 0; seed < seeds; seed++) {
      for (const r of drawOmi2Prompts(omi2, { ...options, seed }).records) {
        if (r.meta?.problemSource === 'augmented_math') counts.set(r.question, (counts.get(r.question) ?? 0) + 1);
      }
    }
    // Two of three distinct augmented_math questions per draw: each about 2/3 of the time.
    expect(counts.size).toBe(3);
    for (const count of counts.values()) expect(count / seeds).toBeCloseTo(2 / 3, 1);
  });
});
