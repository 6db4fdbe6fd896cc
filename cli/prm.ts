// prm-raft prm <subcommand> — commands about one PRM on its own; this file only dispatches.
import { UsageError } from './load-config.js';
import { PRM_EVAL_USAGE, prmEvalCommand } from './prm-eval.js';
import { PRM_TRAIN_USAGE, prmTrainCommand } from './prm-train.js';

const subcommands: Record<string, { run: (args: string[]) => Promise<number>; usage: string }> = {
  eval: { run: prmEvalCommand, usage: PRM_EVAL_USAGE },
  train: { run: prmTrainCommand, usage: PRM_TRAIN_USAGE },
};

const usage = () => Object.values(subcommands).map((s) => s.usage).join('\n');

export async function prmCommand(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const sub = name === undefined ? undefined : subcommands[name];
  if (!sub) throw new UsageError(`${name === undefined ? 'missing subcommand' : `unknown subcommand "prm ${name}"`}\nusage: ${usage()}`);
  return sub.run(rest);
}
