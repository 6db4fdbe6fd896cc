// prm-raft label — start an ER-PRM labeling run; `label export` turns a finished run's counts into a PRM training set.
import { join } from 'node:path';
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
  'prm-raft label export --run RUN --kind hard|soft|er [--eta ETA] --format math-shepherd|jsonl [--out FILE] [--config FILE]';

export async function labelCommand(args: string[]): Promise<number> {
  if (args[0] === 'export') return exportCommand(args.slice(1));
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
    },
    EXPORT_USAGE,
  );
  if (!values.run || positionals.length > 0) throw new UsageError(`usage: ${EXPORT_USAGE}`);
  const kind = LabelKind.safeParse(values.kind);
  if (!kind.success) throw new UsageError(`--kind: expected hard, soft or er, got ${values.kind === undefined ? 'nothing' : `"${values.kind}"`}`);
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
