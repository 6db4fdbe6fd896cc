// prm-raft label — start an ER-PRM labeling run; `label export` turns a finished run's counts into a PRM training set;
// with `--kind prl` and in `label agreement`, PRL labels of the same solutions on the same steps, from their log-probs
// under π and π0 (the labelLogprobs workflow on the gpu queue computes those files; the labels are computed here).
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { join } from 'node:path';
import type { Config } from '../core/config.js';
import { LabelLogprobsResult, type LabelLogprobsInput } from '../core/prl-export.js';
import { LogprobJobSettings, PrlBoundary } from '../core/prl.js';
import { agreementTable } from '../core/prl-agreement.js';
import { resolvePrompt } from '../core/config.js';
import { agreementMarkdown } from '../report/prl-agreement.js';
import { connectClient, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { contentKey } from '../store/files.js';
import { readFinishedLabelRun } from '../store/label-export.js';
import { exportPrlLabels, prlAgreementSolutions, type PrlRunJob } from '../store/prl-export.js';
import { loadConfig } from './load-config.js';
import { BadInputError } from '../core/errors.js';
import { ExportFormat } from '../core/label-export.js';
import { labelPrmDataInputFromConfig } from '../core/labeling.js';
import { LabelKind } from '../core/labels.js';
import { exportLabels } from '../store/label-export.js';
import { DEFAULT_CONFIG, etaFlag, joinNegativeNumbers, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { runFolder, startFromConfig } from './run-workflow.js';

const USAGE = 'prm-raft label --config FILE [--json] [--detach]';
const EXPORT_USAGE =
  'prm-raft label export --run RUN --kind hard|soft|er [--eta ETA] --format math-shepherd|jsonl [--out FILE] [--config FILE]\n' +
  '   or: prm-raft label export --run RUN --kind prl --policy CKPT --initial-policy CKPT --eta ETA [--boundary after-step|from-step-end-token] --format math-shepherd|jsonl [--out FILE] [--config FILE]';
const AGREEMENT_USAGE =
  'prm-raft label agreement --run RUN --policy CKPT --initial-policy CKPT --eta ETA [--boundary after-step|from-step-end-token] [--max-position K] [--include-last-step] [--json] [--config FILE]';

export async function labelCommand(args: string[]): Promise<number> {
  if (args[0] === 'export') return exportCommand(args.slice(1));
  if (args[0] === 'agreement') return agreementCommand(args.slice(1));
  const { values, positionals } = parseFlags(
    args,
    { config: { type: 'string' }, json: { type: 'boolean', default: false }, detach: { type: 'boolean', default: false } },
    USAGE,
  );
  if (!values.config || positionals.length > 0) throw new UsageError(`usage: ${USAGE}\n   or: ${EXPORT_USAGE}`);
  return startFromConfig(values.config, { type: 'labelPrmData', idPrefix: 'label', inputOf: labelPrmDataInputFromConfig, datasetsOf: (i) => i.labeling.datasets }, values);
}

async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    joinNegativeNumbers(args, ['--eta']),
    {
      run: { type: 'string' },
      kind: { type: 'string' },
      eta: { type: 'string' },
      format: { type: 'string' },
      out: { type: 'string' },
      config: { type: 'string', default: DEFAULT_CONFIG },
      policy: { type: 'string' },
      'initial-policy': { type: 'string' },
      boundary: { type: 'string' },
    },
    EXPORT_USAGE,
  );
  if (!values.run || positionals.length > 0) throw new UsageError(`usage: ${EXPORT_USAGE}`);
  if (values.kind === 'prl') {
    const format = ExportFormat.safeParse(values.format);
    if (!format.success) throw new UsageError(`--format: expected math-shepherd or jsonl, got ${values.format === undefined ? 'nothing' : `"${values.format}"`}`);
    const prl = prlFlags(values, EXPORT_USAGE);
    const dir = await runFolder(values.run, values.config);
    const out = values.out ?? join(dir, 'exports', `prl-${prl.eta}.${format.data}.jsonl`);
    return withBadInputAsUsage(async () => {
      const job = await prlRunJob(dir, values.config, prl);
      const stats = await exportPrlLabels({ ...job, format: format.data, out });
      const range = stats.minLabel === null ? '' : `, from ${stats.minLabel.toFixed(3)} to ${stats.maxLabel?.toFixed(3)}`;
      process.stderr.write(
        `wrote ${stats.solutions} solutions (${stats.steps} labeled steps, mean PRL label ${stats.meanLabel?.toFixed(3) ?? '-'}${range}` +
          `${stats.skipped > 0 ? `; ${stats.skipped} left out: no steps or a refused prefix` : ''})\n` +
          (format.data === 'jsonl'
            ? 'note: PRL labels are r − (1/η)·Σ log π/π0, raw: not in [0, 1]; train a regression PRM on them, or export math-shepherd to clip them\n'
            : `note: PRL labels are not in [0, 1]; math-shepherd's values are clipped to [0, 1] (${stats.clipped} of ${stats.steps} were outside)\n`),
      );
      process.stdout.write(`${stats.out}\n`);
      return 0;
    });
  }
  const kind = LabelKind.safeParse(values.kind);
  if (!kind.success) throw new UsageError(`--kind: expected hard, soft, er or prl, got ${values.kind === undefined ? 'nothing' : `"${values.kind}"`}`);
  const format = ExportFormat.safeParse(values.format);
  if (!format.success) throw new UsageError(`--format: expected math-shepherd or jsonl, got ${values.format === undefined ? 'nothing' : `"${values.format}"`}`);
  if (kind.data !== 'er' && values.eta !== undefined) throw new UsageError(`--eta applies to --kind er only`);
  const eta = kind.data === 'er' ? etaFlag(values.eta, EXPORT_USAGE) : undefined;

  const dir = await runFolder(values.run, values.config);
  const tag = kind.data === 'er' ? `er-${eta}` : kind.data;
  const out = values.out ?? join(dir, 'exports', `${tag}.${format.data}.jsonl`);
  try {
    const stats = await exportLabels({ runDir: dir, kind: kind.data, eta, format: format.data, out });
    process.stderr.write(
      `wrote ${stats.solutions} solutions (${stats.steps} labeled steps, mean label ${stats.meanLabel?.toFixed(3) ?? '-'}` +
        `${stats.skipped > 0 ? `; ${stats.skipped} left out: no steps or a refused prefix` : ''})\n`,
    );
    process.stdout.write(`${stats.out}\n`);
    return 0;
  } catch (err) {
    if (err instanceof BadInputError) throw new UsageError(err.message);
    throw err;
  }
}

interface PrlFlags {
  policy: string;
  initialPolicy: string;
  eta: number;
  boundary: PrlBoundary;
}

function prlFlags(values: { policy?: string; 'initial-policy'?: string; eta?: string; boundary?: string }, usage: string): PrlFlags {
  if (!values.policy || !values['initial-policy']) throw new UsageError(`PRL labels need --policy CKPT (π) and --initial-policy CKPT (π0): local checkpoint directories\nusage: ${usage}`);
  const eta = etaFlag(values.eta, usage);
  if (!(eta > 0)) throw new UsageError(`--eta: PRL's η must be > 0 (the inverse of the KL coefficient), got ${values.eta}`);
  const boundary = PrlBoundary.safeParse(values.boundary ?? 'after-step');
  if (!boundary.success) throw new UsageError(`--boundary: expected after-step or from-step-end-token, got "${values.boundary}"`);
  return { policy: values.policy, initialPolicy: values['initial-policy'], eta, boundary: boundary.data };
}

async function withBadInputAsUsage<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof BadInputError) throw new UsageError(err.message);
    throw err;
  }
}

/** The labelLogprobs workflow's input for a finished labeling run: its shards, the two checkpoints, the config's job. */
export function labelLogprobsInput(config: Config, shards: LabelLogprobsInput['shards'], prl: Pick<PrlFlags, 'policy' | 'initialPolicy'>): LabelLogprobsInput {
  return {
    shards,
    policy: prl.policy,
    initialPolicy: prl.initialPolicy,
    prompt: resolvePrompt(config.prompt),
    logprobs: config.prl?.logprobs ?? LogprobJobSettings.parse({}),
    python: config.python,
    storeRoot: config.store.root,
    taskQueues: config.temporal.taskQueues,
    maxAttempts: config.sft.maxAttempts,
    timeoutHours: config.sft.timeoutHours,
  };
}

/**
 * The run's solutions with their log-prob files under π and π0: the labelLogprobs workflow computes them on the gpu
 * queue (durable: retried, resumed, content-addressed), under an id fixed by what it computes, so a second command
 * attaches to a running one and a finished one returns its cached files at once.
 */
async function prlRunJob(dir: string, configPath: string, prl: PrlFlags): Promise<PrlRunJob> {
  const summary = await readFinishedLabelRun(dir);
  const config = await loadConfig(configPath);
  const input = labelLogprobsInput(config, summary.shards, prl);
  const workflowId = `label-logprobs-${contentKey({ shards: input.shards.map((s) => s.sha256), policy: input.policy, initialPolicy: input.initialPolicy, prompt: input.prompt, bf16: input.logprobs.bf16 }).slice(0, 16)}`;
  const client = await connectClient(resolveTemporalTarget(config.temporal));
  let handle;
  try {
    handle = await client.workflow.start('labelLogprobs', { taskQueue: config.temporal.taskQueues.cpu, workflowId, args: [input] });
    process.stderr.write(`started labelLogprobs ${workflowId}: ${summary.shards.length} labels shards under ${prl.policy} and ${prl.initialPolicy} (gpu queue)\n`);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    handle = client.workflow.getHandle(workflowId);
    process.stderr.write(`waiting for labelLogprobs ${workflowId}, already running\n`);
  }
  const result = LabelLogprobsResult.parse(await handle.result());
  return { summary, logprobs: result.shards, steps: config.steps, eta: prl.eta, boundary: prl.boundary };
}

async function agreementCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    joinNegativeNumbers(args, ['--eta']),
    {
      run: { type: 'string' },
      policy: { type: 'string' },
      'initial-policy': { type: 'string' },
      eta: { type: 'string' },
      boundary: { type: 'string' },
      'max-position': { type: 'string' },
      'include-last-step': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      config: { type: 'string', default: DEFAULT_CONFIG },
    },
    AGREEMENT_USAGE,
  );
  if (!values.run || positionals.length > 0) throw new UsageError(`usage: ${AGREEMENT_USAGE}`);
  const prl = prlFlags(values, AGREEMENT_USAGE);
  const maxPosition = values['max-position'] === undefined ? 8 : Number(values['max-position']);
  if (!Number.isInteger(maxPosition) || maxPosition < 1) throw new UsageError(`--max-position: expected an integer ≥ 1, got "${values['max-position']}"`);
  const dir = await runFolder(values.run, values.config);
  return withBadInputAsUsage(async () => {
    const job = await prlRunJob(dir, values.config, prl);
    const table = agreementTable(await prlAgreementSolutions(job), { maxPosition, lastStep: values['include-last-step'] ? 'include' : 'exclude' });
    process.stdout.write(values.json ? `${JSON.stringify({ eta: prl.eta, boundary: prl.boundary, policy: prl.policy, initialPolicy: prl.initialPolicy, ...table }, null, 2)}\n` : `${agreementMarkdown(table, prl.eta)}\n`);
    return 0;
  });
}
