// PRL (Process Reward Learning; Yao, Wang & Zhang, arXiv 2601.10201; issue 14): process rewards from the outcome
// reward and the policy's own log-ratio to the initial policy, without a PRM and without Monte-Carlo completions.
//
// Under Q(π) = E[r(x,a)] − (1/η)·KL(π ‖ π0) the optimal policy satisfies r(x,a) − (1/η)·ln[π*(a|x)/π0(a|x)] = C(x)
// for every response a. Split a into steps a¹…a^L; the process reward of the prefix a^[l] is
//
//   r_PRL(x, a^[l]) = r(x, a) − (1/η) · Σ_{j>l} ln[ π(a^j | x, a^[j−1]) / π0(a^j | x, a^[j−1]) ]
//
// the outcome reward minus the KL still to come. Per token: with d_t = ln π(t) − ln π0(t) for the response's
// tokens t = 0…n−1, and step l ending after token e_l − 1 (e_l = `stepEnds[l]`, an exclusive token end):
//
//   'after-step' (the paper's formula, the default):   r_PRL(l) = r − (1/η) · Σ_{t ≥ e_l} d_t
//   'from-step-end-token' (the authors' code):          r_PRL(l) = r − (1/η) · Σ_{t ≥ e_l − 1} d_t
//
// The authors' code (github.com/MaxwellJryao/Process-Reward-Learning, verl/trainer/ppo/ray_trainer.py, the
// `AdvantageEstimator.PRM` branch of `fit`) takes log_prob_diff = old_log_probs − ref_log_prob over the response
// tokens, its suffix sum *including* the current token (`sum − cumsum + diff`), reward − suffix/η at every token, and
// keeps the value only at step-end tokens (every `prm.step_len` tokens, or the "\n" / "\n\n" token, and always the
// last token). So in their code the value at a step includes the log-ratio of the step's own last token, and the
// last step's value is r − d_{n−1}/η, not exactly r; by the paper's Σ_{j>l} the last step's value is exactly r.
// Both are offered; 'after-step' is the default because it is the paper's definition and makes the last step's
// value the outcome exactly (as the ER-PRM labels' last step is). Neither applies any clipping: the authors'
// length normalisation and sigmoid are commented out in that code, so none is applied here. (With `prm.adv: orm`
// their trainer first replaces r by the group-normalised GRPO score; that is an advantage estimate for training,
// not the label, and is not done here: r is the outcome reward from grading, or an ORM score.)
//
// Pure: no I/O. The log-prob job (python-sft/prm_raft/logprobs.py) gives per-token log-probs and each token's
// character end; `stepTokenEnds` maps the one step splitter's character spans (core/steps.ts) onto tokens.
import { z } from 'zod';
import { ArtifactManifest } from './manifests.js';
import { BadInputError } from './errors.js';
import { StepSplitConfig, stepSpans } from './steps.js';

// --------------------------------------------------------------------------------------------------
// Records that cross a boundary
// --------------------------------------------------------------------------------------------------

const logprob = z.number().max(0, { error: 'a log-probability is ≤ 0' });
const tokenCount = z.number().int().min(1);

/**
 * One line of the log-prob job's output (python-sft/prm_raft/logprobs.py): the completion's tokens' log-probs under
 * one checkpoint (the prompt is context, not scored), and where each token ends in the completion, in UTF-16 code
 * units (JavaScript string indices, so `completion.slice(0, char_ends[t])` is the text through token t).
 */
export const LogprobLine = z
  .strictObject({
    id: z.string().min(1),
    logprobs: z.array(logprob),
    char_ends: z.array(z.number().int().min(0)),
  })
  .refine((l) => l.logprobs.length === l.char_ends.length, { error: 'logprobs and char_ends must have one entry per token', path: ['char_ends'] });
export type LogprobLine = z.infer<typeof LogprobLine>;

/** Where the value of a step is read: after its last token (the paper) or at its last token (the authors' code). */
export const PrlBoundary = z.enum(['after-step', 'from-step-end-token']);
export type PrlBoundary = z.infer<typeof PrlBoundary>;

/** Everything the PRL labels of one response need: its steps on its tokens, both policies' log-probs, the outcome. */
export const PrlResponse = z.strictObject({
  /** `<prompt id>/<response index>`, as the scores and selection stages name responses. */
  id: z.string().min(1),
  promptId: z.string().min(1),
  /** Per step, the number of the response's tokens through the end of that step (exclusive end), non-decreasing. */
  stepEnds: z.array(tokenCount),
  /** ln π(a_t | x, a_<t) under the current policy, one per completion token. */
  logprobs: z.array(logprob),
  /** ln π0(a_t | x, a_<t) under the initial (reference) policy, the same tokens. */
  refLogprobs: z.array(logprob),
  /** r(x, a): 1 right / 0 wrong from grading, or an outcome reward model's score. */
  outcome: z.number(),
});
export type PrlResponse = z.infer<typeof PrlResponse>;

/** The PRL labels of one response at one η. */
export const PrlLabelRecord = z.strictObject({
  id: z.string().min(1),
  promptId: z.string().min(1),
  outcome: z.number(),
  eta: z.number().positive(),
  boundary: PrlBoundary,
  /** r_PRL(x, a^[l]) for l = 1…L. */
  stepValues: z.array(z.number()),
  /** r − (1/η)·ln[π(a|x)/π0(a|x)]: the value of the empty prefix, the whole response's regularised reward. */
  sequence: z.number(),
  /** The minimum of `stepValues`; null for a response with no steps. */
  minStep: z.number().nullable(),
  /** ln[π(a|x)/π0(a|x)] over the whole response: how far the policy has drifted on it. */
  logRatio: z.number(),
});
export type PrlLabelRecord = z.infer<typeof PrlLabelRecord>;

/** What the log-prob stage returns for one samples shard under one checkpoint (the records stay on disk). */
export const LogprobShardResult = ArtifactManifest.extend({
  dataset: z.string(),
  shard: z.number().int(),
  /** The checkpoint the log-probs are under (resolved path). */
  checkpoint: z.string(),
  /** Responses scored (one line each in `uri`). */
  responses: z.number().int().nonnegative(),
  /** Completion tokens scored over the shard. */
  tokens: z.number().int().nonnegative(),
  cached: z.boolean(),
});
export type LogprobShardResult = z.infer<typeof LogprobShardResult>;

/**
 * How the log-prob job runs (a suggested `prl.logprobs` config section; core/config.ts may swap `command` for its
 * `commandTemplate(['python', 'config', 'output_dir'])`). Only `bf16` changes the values; the rest is throughput.
 */
export const LogprobJobSettings = z.strictObject({
  /** `{python}`, `{config}` and `{output_dir}` are filled in. */
  command: z.array(z.string().min(1)).min(1).default(['{python}', '-m', 'prm_raft.logprobs', '--config', '{config}']),
  /** At most this many (padded) tokens in one forward pass. */
  batchTokens: z.int().positive().default(8192),
  maxBatchSize: z.int().positive().default(64),
  bf16: z.boolean().default(false),
  device: z.string().regex(/^(auto|cpu|cuda|cuda:\d+)$/, { error: 'expected auto, cpu, cuda or cuda:N' }).default('auto'),
});
export type LogprobJobSettings = z.infer<typeof LogprobJobSettings>;

/** How a response is scored for selection: the whole response's r_PRL, or the minimum over its steps. */
export const PrlScoreKind = z.enum(['sequence', 'min-step']);
export type PrlScoreKind = z.infer<typeof PrlScoreKind>;

// --------------------------------------------------------------------------------------------------
// Steps on tokens
// --------------------------------------------------------------------------------------------------

function checkTokenCharEnds(tokenCharEnds: readonly number[], where: string): void {
  let previous = 0;
  for (const [t, end] of tokenCharEnds.entries()) {
    if (!Number.isInteger(end) || end < previous) {
      throw new BadInputError(`${where}: token ${t} ends at character ${end}, before token ${t - 1} (${previous}); token character ends must be non-decreasing integers ≥ 0`);
    }
    previous = end;
  }
}

/**
 * The token end (exclusive) of each step, from the steps' character ends and the tokens' character ends (both in
 * the completion's own indices). A step ends after the first token that reaches its last character, and after any
 * tokens that end at the same character (byte-level pieces of one character, whose offsets all name that
 * character): a token that straddles a step boundary (the step ends mid-token) belongs to the step it starts in, so
 * the prefix a^[l] read on tokens always holds the whole step. Two steps that end inside one token share its end.
 */
export function stepTokenEnds(stepCharEnds: readonly number[], tokenCharEnds: readonly number[], where = 'response'): number[] {
  checkTokenCharEnds(tokenCharEnds, where);
  const textEnd = tokenCharEnds.at(-1) ?? 0;
  const ends: number[] = [];
  let t = 0;
  let previous = 0;
  for (const [l, end] of stepCharEnds.entries()) {
    if (!Number.isInteger(end) || end <= previous) {
      throw new BadInputError(`${where}: step ${l + 1} ends at character ${end}; step ends must be increasing integers > 0 (previous: ${previous})`);
    }
    if (end > textEnd) {
      throw new BadInputError(`${where}: step ${l + 1} ends at character ${end} but the tokens end at character ${textEnd}: the log-probs were computed on a different text`);
    }
    while ((tokenCharEnds[t] as number) < end) t += 1;
    // Tokens ending where that one ends hold the rest of its characters (byte-level pieces of one character).
    const reached = tokenCharEnds[t] as number;
    while (t + 1 < tokenCharEnds.length && tokenCharEnds[t + 1] === reached) t += 1;
    ends.push(t + 1);
    previous = end;
  }
  return ends;
}

/** `stepTokenEnds` for a response's text cut by the one step splitter. */
export function responseStepTokenEnds(text: string, how: StepSplitConfig, tokenCharEnds: readonly number[], where = 'response'): number[] {
  return stepTokenEnds(
    stepSpans(text, how).map((s) => s.end),
    tokenCharEnds,
    where,
  );
}

/**
 * Fixed token blocks (the authors' `prm.step_split: length`, 256 tokens in their runs): a step ends every
 * `blockTokens` tokens, and the last step at the last token.
 */
export function fixedBlockStepEnds(tokens: number, blockTokens: number): number[] {
  if (!Number.isInteger(tokens) || tokens < 0) throw new BadInputError(`fixed token blocks: the token count must be an integer ≥ 0, got ${tokens}`);
  if (!Number.isInteger(blockTokens) || blockTokens < 1) throw new BadInputError(`fixed token blocks: the block length must be an integer ≥ 1, got ${blockTokens}`);
  const ends: number[] = [];
  for (let e = blockTokens; e < tokens; e += blockTokens) ends.push(e);
  if (tokens > 0) ends.push(tokens);
  return ends;
}

/** Where PRL's steps end: the one step splitter's steps (newline, blank line, regex), or fixed token blocks. */
export const PrlSteps = z.discriminatedUnion('by', [
  ...StepSplitConfig.options,
  z.strictObject({ by: z.literal('tokens'), /** The authors ran 256. */ blockTokens: z.int().positive() }),
]);
export type PrlSteps = z.infer<typeof PrlSteps>;

/**
 * One response's PRL input from its text, its outcome and its log-prob lines under the current and the initial
 * policy (the log-prob stage's files). Both lines must name the response and cover its text with the same tokens:
 * the current policy is a fine-tune of the initial one and shares its tokenizer.
 */
export function prlResponse(args: { id: string; promptId: string; text: string; steps: PrlSteps; outcome: number; current: LogprobLine; initial: LogprobLine }): PrlResponse {
  const { id, text, current, initial } = args;
  const where = `response ${id}`;
  if (current.id !== id || initial.id !== id) throw new BadInputError(`${where}: log-prob lines are for ${current.id} (current policy) and ${initial.id} (initial policy)`);
  const same = current.char_ends.length === initial.char_ends.length && current.char_ends.every((e, t) => e === initial.char_ends[t]);
  if (!same) {
    throw new BadInputError(`${where}: the current and the initial policy tokenized it differently (${current.char_ends.length} and ${initial.char_ends.length} tokens); PRL needs one tokenizer`);
  }
  const covered = current.char_ends.at(-1) ?? 0;
  if (covered !== text.length) throw new BadInputError(`${where}: its tokens cover ${covered} characters but its text has ${text.length}: the log-probs were computed on another text`);
  const stepEnds = args.steps.by === 'tokens' ? fixedBlockStepEnds(current.logprobs.length, args.steps.blockTokens) : responseStepTokenEnds(text, args.steps, current.char_ends, where);
  return { id, promptId: args.promptId, stepEnds, logprobs: current.logprobs, refLogprobs: initial.logprobs, outcome: args.outcome };
}

// --------------------------------------------------------------------------------------------------
// The labels
// --------------------------------------------------------------------------------------------------

function checkEta(eta: number): void {
  // +∞ is allowed on purpose: no KL penalty, every step's value is the outcome.
  if (Number.isNaN(eta) || !(eta > 0)) throw new BadInputError(`PRL: η must be a number > 0 (the inverse of the KL coefficient; +Infinity for none), got ${eta}`);
}

function checkResponse(r: Pick<PrlResponse, 'id' | 'stepEnds' | 'logprobs' | 'refLogprobs' | 'outcome'>): void {
  const where = `response ${r.id}`;
  if (r.logprobs.length !== r.refLogprobs.length) {
    throw new BadInputError(
      `${where}: ${r.logprobs.length} token log-probs under the current policy but ${r.refLogprobs.length} under the initial policy; both must score the same tokens (same tokenizer, same text)`,
    );
  }
  if (!Number.isFinite(r.outcome)) throw new BadInputError(`${where}: the outcome reward must be a finite number, got ${r.outcome}`);
  for (const [name, lps] of [
    ['current', r.logprobs],
    ['initial', r.refLogprobs],
  ] as const) {
    const t = lps.findIndex((x) => !Number.isFinite(x) || x > 0);
    if (t >= 0) throw new BadInputError(`${where}: token ${t}'s log-prob under the ${name} policy is ${lps[t]}; log-probs must be finite and ≤ 0`);
  }
  let previous = 1;
  for (const [l, e] of r.stepEnds.entries()) {
    if (!Number.isInteger(e) || e < previous || e > r.logprobs.length) {
      throw new BadInputError(
        `${where}: step ${l + 1} ends at token ${e}; step ends must be non-decreasing integers in [1, ${r.logprobs.length}] (the response has ${r.logprobs.length} tokens)`,
      );
    }
    previous = e;
  }
}

/** Σ_{s ≥ t} (lp[s] − ref[s]) for t = 0…n (the last entry is 0). */
function suffixLogRatios(logprobs: readonly number[], refLogprobs: readonly number[]): number[] {
  const n = logprobs.length;
  const suffix = new Array<number>(n + 1);
  suffix[n] = 0;
  for (let t = n - 1; t >= 0; t -= 1) suffix[t] = (suffix[t + 1] as number) + ((logprobs[t] as number) - (refLogprobs[t] as number));
  return suffix;
}

/** r − x/η, with η = +∞ giving r exactly (x/∞ is ±0). */
function regularised(outcome: number, logRatio: number, eta: number): number {
  return outcome - logRatio / eta;
}

/** r_PRL(x, a^[l]) for every step l of one response (see the header for the two boundaries). */
export function prlStepValues(r: Pick<PrlResponse, 'id' | 'stepEnds' | 'logprobs' | 'refLogprobs' | 'outcome'>, eta: number, boundary: PrlBoundary = 'after-step'): number[] {
  checkEta(eta);
  checkResponse(r);
  const suffix = suffixLogRatios(r.logprobs, r.refLogprobs);
  const shift = boundary === 'after-step' ? 0 : 1;
  return r.stepEnds.map((e) => regularised(r.outcome, suffix[e - shift] as number, eta));
}

/** All of one response's PRL labels at η: per step, the whole response's value, the minimum over its steps. */
export function prlLabels(r: PrlResponse, eta: number, boundary: PrlBoundary = 'after-step'): PrlLabelRecord {
  const stepValues = prlStepValues(r, eta, boundary);
  const logRatio = suffixLogRatios(r.logprobs, r.refLogprobs)[0] as number;
  return {
    id: r.id,
    promptId: r.promptId,
    outcome: r.outcome,
    eta,
    boundary,
    stepValues,
    sequence: regularised(r.outcome, logRatio, eta),
    minStep: stepValues.length > 0 ? Math.min(...stepValues) : null,
    logRatio,
  };
}

/**
 * The score a response is ranked by: `sequence` is r − (1/η)·ln[π(a|x)/π0(a|x)] (the value of the empty prefix:
 * among right answers, the one the policy has drifted least on), `min-step` the minimum of its step values (as the
 * PRM selection takes the minimum step score). A response with no steps has no min-step score: null.
 */
export function prlResponseScore(labels: Pick<PrlLabelRecord, 'sequence' | 'minStep'>, kind: PrlScoreKind): number | null {
  return kind === 'sequence' ? labels.sequence : labels.minStep;
}
