// prm-raft: the command line. Each command is one file; this one only dispatches.
import { UsageError } from './load-config.js';
import { configCheckCommand } from './config-check.js';
import { devCommand } from './dev.js';
import { workerCommand } from './worker.js';
import { evalCommand } from './eval.js';
import { statusCommand } from './status.js';
import { gradeCommand } from './grade.js';
import { bonCommand } from './bon.js';
import { dataCommand } from './data.js';
import { compareCommand } from './compare.js';
import { reportCommand } from './rebuild-report.js';
import { labelCommand } from './label.js';
import { labelsCommand } from './labels.js';
import { iterateCommand } from './iterate.js';
import { resumeCommand } from './resume.js';
import { prmCommand } from './prm.js';
import { campaignCommand } from './campaign.js';

const HELP = `prm-raft — RAFT of math-reasoning LLMs guided by process reward models, on Temporal

usage:
  prm-raft config check FILE                 validate a config and read every dataset it names
                                             (exit 2 lists every problem)
  prm-raft dev up|down|status [--config F]   the embedded stack: Temporal dev server, model servers, worker
  prm-raft worker [--config F] [--queues cpu,gpu]
                                             a worker alone, for any Temporal address (TEMPORAL_* env overrides)
  prm-raft eval --config F [--policy MODEL] [--json] [--detach]
                                             zero-shot CoT evaluation of a policy, with live progress
  prm-raft iterate --config F [--policy CHECKPOINT_DIR] [--json] [--detach]
                                             one RAFT iteration: sample, PRM-score, select, SFT, evaluate
  prm-raft compare --config F [--policy CHECKPOINT_DIR] [--labels RUN] [--json] [--detach]
                                             one RAFT iteration per reward model from one sampling stage: Table 1;
                                             reward models with \`train\` are trained first (from RUN, or labeling)
  prm-raft campaign start --config F [--id ID] [--policy CHECKPOINT_DIR] [--auto]
                                             a RAFT campaign: iteration after iteration from the last tuned
                                             policy, each on fresh prompts, until a stop rule (config: campaign)
  prm-raft campaign next|status|pause|resume|stop|schedule|unschedule ID [--config F]
                                             trigger the next iteration (starting the campaign if ID is new), show
                                             the per-iteration table, or schedule triggers (\`campaign --help\`)
  prm-raft report RUN [--config F]           rebuild a comparison's, best-of-N run's or campaign's HTML report from its artifacts
  prm-raft resume RUN [--config F]           start a failed run again; finished stages are skipped
  prm-raft status [WORKFLOW_ID] [--config F] reattach to a run, or list recent runs
  prm-raft grade --in FILE.jsonl [--out FILE.jsonl]
                                             grade model outputs with math-verify (accuracy on stderr)
  prm-raft label --config F [--json] [--detach]
                                             ER-PRM labeling: K solutions per problem, M completions per step
  prm-raft label export --run RUN --kind hard|soft|er [--eta ETA] --format math-shepherd|jsonl [--out FILE]
                                             a PRM training set from a finished run's counts (no sampling)
  prm-raft label export --run RUN --kind prl --policy CKPT --initial-policy CKPT --eta ETA --format math-shepherd|jsonl
                                             PRL labels of the run's solutions from their log-probs under π and π0
  prm-raft label agreement --run RUN --policy CKPT --initial-policy CKPT --eta ETA [--json]
                                             PRL vs ER(η) labels on the run's steps: Pearson r, mean |PRL − ER|
  prm-raft labels --k K --m M --eta ETA      a step's hard, soft and ER(η) labels from k of m completions, as JSON
  prm-raft bon --config F [--json] [--detach]
                                             best-of-N of every reward model on sampled test responses, with a report
  prm-raft bon --scores FILE.jsonl [--n 1,2,4,8] [--draws D] [--seed S]
               [--aggregate min|last|mean|prod] [--json]
                                             best-of-N, majority, weighted vote and pass@N from reward scores
  prm-raft prm eval --benchmark processbench|tinymath [--data PATH] [--config F] [--save-scores FILE.jsonl]
               [--threshold T] [--json]
                                             a live PRM against step-labelled solutions: first-error accuracy and F1,
                                             with a threshold sweep
  prm-raft prm train --config F --labels RUN --kind hard|soft|er [--eta ETA] [--json] [--detach]
                                             train a PRM (prmTraining) on a finished labeling run's labels
  prm-raft prm eval --benchmark processbench|tinymath [--data PATH] --scores FILE.jsonl [--threshold T] [--json]
                                             the same from step scores computed elsewhere
  prm-raft data prepare [--out DIR] [--raw DIR]
                                             fetch the public datasets and write normalized files
`;

const commands: Record<string, (args: string[]) => Promise<number>> = {
  config: configCheckCommand,
  dev: devCommand,
  worker: workerCommand,
  eval: evalCommand,
  iterate: iterateCommand,
  resume: resumeCommand,
  status: statusCommand,
  grade: gradeCommand,
  bon: bonCommand,
  compare: compareCommand,
  report: reportCommand,
  label: labelCommand,
  labels: labelsCommand,
  data: dataCommand,
  prm: prmCommand,
  campaign: campaignCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"\n\n${HELP}`);
  return command(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`prm-raft: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`prm-raft: ${err instanceof Error ? err.message : String(err)}\n`);
      if (process.env.PRM_RAFT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
      process.exitCode = 1;
    }
  },
);
