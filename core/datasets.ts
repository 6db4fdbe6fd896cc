// Dataset loaders: one raw-record schema per source, each line turned into a ProblemRecord or a
// DatasetLineError that names the file, the line and what is wrong. Pure: the store does the reading.
import { z } from 'zod';
import { BadInputError } from './errors.js';
import { mulberry32 } from './random.js';
import { ProblemRecord as ProblemRecordSchema, type AnswerKind, type DatasetSource, type ProblemRecord } from './records.js';

/** Where a line came from, and what its record's id is built from. */
export interface LineContext {
  file: string;
  /** 1-based line number in the file, for error messages. */
  line: number;
  /** 0-based position among the file's records (blank lines skipped); defaults to line - 1. */
  index?: number;
  /**
   * Start of derived ids, `<idPrefix>-<index>` (default: the source name). Give each file its own, such as
   * the dataset's configured name ("gsm8k-train"), so two files never share an id.
   */
  idPrefix?: string;
}

/** A line that is not a record of its dataset: bad input, never retried. */
export class DatasetLineError extends BadInputError {
  override name = 'DatasetLineError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

const text = z.string().min(1);

export const RawGsm8k = z.object({ question: text, answer: text });
export const RawMath = z.object({ problem: text, level: z.string(), type: text, solution: text });
export const RawMath500 = z.object({
  problem: text,
  solution: z.string(),
  answer: text,
  subject: text,
  level: z.number().int(),
  unique_id: text,
});
export const RawOmi2 = z.object({
  problem: text,
  generated_solution: z.string(),
  expected_answer: text,
  problem_source: text,
});
// A generator may write the answer as a JSON number; it is kept as text like every other answer.
export const RawTinymath = z.object({
  id: text,
  question: text,
  solution: text,
  answer: z.union([text, z.number().int()], { error: 'must be a non-empty string or an integer' }),
});

const GSM8K_SOURCES_IN_OMI2 = new Set(['gsm8k', 'augmented_gsm8k']);
// "1,000", "-3", "2.5"; commas only as thousands separators, so "1,2" is not silently read as 12.
const GSM8K_NUMBER = /^-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$/;
const CALCULATOR_ANNOTATION = /<<[^<>]*>>/g;

/** A line of an already normalized file (`prm-raft data prepare` writes them). */
export function parseNormalizedLine(line: string, where: LineContext): ProblemRecord {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    throw new DatasetLineError(where.file, where.line, `not valid JSON (${(err as Error).message})`);
  }
  const result = ProblemRecordSchema.safeParse(json);
  if (!result.success) throw new DatasetLineError(where.file, where.line, `not a normalized problem: ${result.error.issues.map((i) => describeIssue(i, json)).join('; ')}`);
  return result.data;
}

export function parseDatasetLine(source: DatasetSource, line: string, where: LineContext): ProblemRecord {
  function fail(reason: string): never {
    throw new DatasetLineError(where.file, where.line, reason);
  }
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    fail(`expected a JSON object (got ${preview(json)})`);
  }
  const idPrefix = where.idPrefix ?? source;
  const derivedId = `${idPrefix}-${where.index ?? where.line - 1}`;
  const parse = <T>(schema: z.ZodType<T>): T => {
    const result = schema.safeParse(json);
    if (!result.success) fail(result.error.issues.map((issue) => describeIssue(issue, json)).join('; '));
    return result.data;
  };

  switch (source) {
    case 'gsm8k': {
      const raw = parse(RawGsm8k);
      const marker = raw.answer.lastIndexOf('####');
      const final = marker < 0 ? '' : raw.answer.slice(marker + 4).trim();
      if (!GSM8K_NUMBER.test(final)) {
        fail(`'answer' must end with "#### N" (got ${preview(raw.answer, 'end')})`);
      }
      const solution = raw.answer.slice(0, marker).replace(CALCULATOR_ANNOTATION, '').trim();
      return {
        id: derivedId,
        source,
        question: raw.question,
        answer: final.replace(/,/g, ''),
        answerKind: 'gsm8k',
        ...(solution ? { solution } : {}),
      };
    }
    case 'math': {
      const raw = parse(RawMath);
      const answer = lastBoxedContent(raw.solution)?.trim();
      if (!answer) fail(`'solution' has no \\boxed{} answer (got ${preview(raw.solution, 'end')})`);
      const level = /^Level (\d+)$/.exec(raw.level)?.[1];
      if (level === undefined && raw.level !== 'Level ?') {
        fail(`'level' must be "Level N" or "Level ?" (got ${preview(raw.level)})`);
      }
      return {
        id: derivedId,
        source,
        question: raw.problem,
        answer,
        answerKind: 'math',
        solution: raw.solution,
        meta: { ...(level !== undefined ? { level: Number(level) } : {}), subject: raw.type },
      };
    }
    case 'math500': {
      const raw = parse(RawMath500);
      // "test/precalculus/807.json" → "math500-test-precalculus-807": no slash, so "<id>/<n>" response ids stay unambiguous.
      const id = `${idPrefix}-${raw.unique_id.replace(/\.json$/, '').replace(/\//g, '-')}`;
      return {
        id,
        source,
        question: raw.problem,
        answer: raw.answer,
        answerKind: 'math',
        ...(raw.solution ? { solution: raw.solution } : {}),
        meta: { level: raw.level, subject: raw.subject },
      };
    }
    case 'omi2': {
      const raw = parse(RawOmi2);
      const answerKind: AnswerKind = GSM8K_SOURCES_IN_OMI2.has(raw.problem_source) ? 'gsm8k' : 'math';
      return {
        id: derivedId,
        source,
        question: raw.problem,
        answer: raw.expected_answer,
        answerKind,
        ...(raw.generated_solution ? { solution: raw.generated_solution } : {}),
        meta: { problemSource: raw.problem_source },
      };
    }
    case 'tinymath': {
      const raw = parse(RawTinymath);
      const answer = String(raw.answer);
      const lastLine = raw.solution.trimEnd().split('\n').at(-1)?.trim() ?? '';
      if (/^####\s*(.*)$/.exec(lastLine)?.[1] !== answer) {
        fail(`'solution' must end with the line "#### ${answer}" (got ${preview(lastLine)})`);
      }
      return { id: raw.id, source, question: raw.question, answer, answerKind: 'tinymath', solution: raw.solution };
    }
  }
}

/**
 * The content of the last `\boxed{…}` or `\fbox{…}` in a text (braces nested to any depth; `\{` `\}` `\\`
 * are escapes and do not count; empty for `\boxed{}`), or of the last brace-less `\boxed x` (up to the
 * closing `$` or the end of the line). Null when there is none or the last one is never closed.
 */
export function lastBoxedContent(text: string): string | null {
  // The lookahead leaves out other commands that merely start alike, such as \fboxsep.
  const last = [...text.matchAll(/\\(?:boxed|fbox)(?![a-zA-Z])\s*/g)].at(-1);
  if (!last) return null;
  const open = last.index + last[0].length;
  if (text[open] !== '{') return /^[^$\n]*/.exec(text.slice(open))![0].trim() || null;
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  return null;
}

/** The text two questions are compared by: lowercase, whitespace collapsed. */
export function normalizeQuestion(question: string): string {
  return question.toLowerCase().replace(/\s+/g, ' ').trim();
}

export interface Omi2DrawOptions {
  /** How many prompts to draw per OpenMathInstruct-2 `problem_source`; other sources are ignored. */
  perSource: Record<string, number>;
  seed: number;
  /** Questions of the evaluation sets: never drawn. */
  exclude: Iterable<string>;
}

export interface Omi2SourceStats {
  requested: number;
  /** Distinct questions of this source that are not in the evaluation sets. */
  available: number;
  drawn: number;
  shortfall: number;
}

export interface Omi2DrawStats {
  perSource: Record<string, Omi2SourceStats>;
  /** Records skipped because an earlier record had the same question (OMI2 holds many solutions per problem). */
  duplicateRecords: number;
  /** Records skipped because their question is in an evaluation set. */
  excludedRecords: number;
}

export interface Omi2Draw {
  records: ProblemRecord[];
  stats: Omi2DrawStats;
}

/**
 * A seeded draw of OMI2 prompts, uniform over distinct questions, in one pass (reservoir sampling): the
 * full dataset (14M rows) never has to be held in memory, only its distinct questions. `add` the records
 * in a fixed order, then `finish`: the same records in the same order with the same seed give the same draw.
 */
export function createOmi2Draw(options: Omi2DrawOptions): { add(record: ProblemRecord): void; finish(): Omi2Draw } {
  const random = mulberry32(options.seed);
  const excluded = new Set(Array.from(options.exclude, normalizeQuestion));
  const seen = new Set<string>();
  const reservoirs = new Map(
    Object.entries(options.perSource).map(([source, requested]) => [
      source,
      { requested, available: 0, chosen: [] as { order: number; record: ProblemRecord }[] },
    ]),
  );
  let order = 0;
  let duplicateRecords = 0;
  let excludedRecords = 0;

  return {
    add(record) {
      const reservoir = reservoirs.get(record.meta?.problemSource ?? '');
      if (!reservoir) return;
      const key = normalizeQuestion(record.question);
      if (excluded.has(key)) {
        excludedRecords++;
        return;
      }
      if (seen.has(key)) {
        duplicateRecords++;
        return;
      }
      seen.add(key);
      const entry = { order: order++, record };
      reservoir.available++;
      if (reservoir.chosen.length < reservoir.requested) {
        reservoir.chosen.push(entry);
      } else {
        const slot = Math.floor(random() * reservoir.available);
        if (slot < reservoir.requested) reservoir.chosen[slot] = entry;
      }
    },
    finish() {
      const perSource: Record<string, Omi2SourceStats> = {};
      for (const [source, { requested, available, chosen }] of reservoirs) {
        perSource[source] = { requested, available, drawn: chosen.length, shortfall: requested - chosen.length };
      }
      const records = [...reservoirs.values()]
        .flatMap((reservoir) => reservoir.chosen)
        .sort((a, b) => a.order - b.order)
        .map((entry) => entry.record);
      return { records, stats: { perSource, duplicateRecords, excludedRecords } };
    },
  };
}

export function drawOmi2Prompts(records: Iterable<ProblemRecord>, options: Omi2DrawOptions): Omi2Draw {
  const draw = createOmi2Draw(options);
  for (const record of records) draw.add(record);
  return draw.finish();
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const field = `'${issue.path.join('.')}'`;
  if (issue.code === 'invalid_type') {
    const value = issue.path.reduce<unknown>((v, key) => (v as Record<PropertyKey, unknown>)?.[key], input);
    if (value === undefined) return `${field} is missing`;
    return `${field} must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`} (got ${preview(value)})`;
  }
  if (issue.code === 'too_small' && issue.origin === 'string') return `${field} must not be empty`;
  return `${field} ${issue.message}`;
}

/** A short excerpt of a value for an error message, as JSON; `end` keeps the tail, where answers sit. */
function preview(value: unknown, keep: 'start' | 'end' = 'start', max = 60): string {
  const raw = typeof value === 'string' ? value : JSON.stringify(value);
  const cut = raw.length <= max ? raw : keep === 'end' ? `…${raw.slice(-max)}` : `${raw.slice(0, max)}…`;
  return typeof value === 'string' ? JSON.stringify(cut) : cut;
}
