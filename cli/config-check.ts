// prm-raft config check FILE
import { loadConfig, UsageError } from './load-config.js';

export async function configCheckCommand(args: string[]): Promise<number> {
  const [verb, file, ...extra] = args;
  if (verb !== 'check' || file === undefined || extra.length > 0) throw new UsageError('usage: prm-raft config check FILE');
  const config = await loadConfig(file);
  process.stdout.write(`${file}: ok (${config.name})\n`);
  return 0;
}
