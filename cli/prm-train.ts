// prm-raft prm train — train a PRM from a finished labeling run's labels, as a durable stage (the trainPrm workflow).
import { PrmLabels } from '../core/config.js';
import { formatIssues } from '../core/parse-config.js';
import { trainPrmInputFromConfig } from '../core/prm-training.js';
import { etaFlag, joinNegativeNumbers, parseFlags } from './flags.js';
import { UsageError } from './load-config.js';
import { runFolder, startFromConfig } from './run-workflow.js';

export const PRM_TRAIN_USAGE = 'prm-raft prm train --config F --labels RUN --kind hard|soft|er [--eta ETA] [--json] [--detach]';

export async function prmTrainCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    joinNegativeNumbers(args, ['--eta']),
    {
      config: { type: 'string' },
      labels: { type: 'string' },
      kind: { type: 'string' },
      eta: { type: 'string' },
      json: { type: 'boolean', default: false },
      detach: { type: 'boolean', default: false },
    },
    PRM_TRAIN_USAGE,
  );
  if (!values.config || !values.labels || positionals.length > 0) throw new UsageError(`usage: ${PRM_TRAIN_USAGE}`);
  const eta = values.kind === 'er' ? etaFlag(values.eta, PRM_TRAIN_USAGE) : values.eta;
  const train = PrmLabels.safeParse({ labels: values.kind, eta }, { reportInput: true });
  if (!train.success) {
    throw new UsageError(`${formatIssues(train.error.issues).map((m) => `--${m.replace(/^labels:/, 'kind:')}`).join('; ')}\nusage: ${PRM_TRAIN_USAGE}`);
  }
  const labelRunDir = await runFolder(values.labels, values.config);
  return startFromConfig(values.config, { type: 'trainPrm', idPrefix: 'prm-train', inputOf: (config) => trainPrmInputFromConfig(config, labelRunDir, train.data) }, values);
}
