// prm-raft config check FILE: the config valid, and every dataset it names readable and well-formed.
import { loadConfig, UsageError } from './load-config.js';
import { configDatasets, preflightDatasets } from './preflight.js';

export async function configCheckCommand(args: string[]): Promise<number> {
  const [verb, file, ...extra] = args;
  if (verb !== 'check' || file === undefined || extra.length > 0) throw new UsageError('usage: prm-raft config check FILE');
  const config = await loadConfig(file);
  await preflightDatasets(configDatasets(config));
  process.stdout.write(`${file}: ok (${config.name})\n`);
  return 0;
}
