// prm-raft dev up|down|status — the embedded stack on this machine.
import { stackDown, stackStatus, stackUp, stageProcesses } from '../stack/dev-stack.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';

const USAGE = 'prm-raft dev up|down|status [--config FILE]';

export async function devCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { config: { type: 'string', default: DEFAULT_CONFIG } }, USAGE);
  const [verb, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(' ')}\nusage: ${USAGE}`);
  const config = await loadConfig(values.config);
  const log = (line: string) => process.stderr.write(`${line}\n`);
  switch (verb) {
    case 'up':
      await stackUp(config, values.config, log);
      log('stack up; `prm-raft dev down` stops it');
      return 0;
    case 'down':
      await stackDown(config, log);
      return 0;
    case 'status': {
      const parts = await stackStatus(config, values.config);
      for (const p of parts) {
        process.stdout.write(`${p.name.padEnd(9)} ${p.healthy ? 'healthy' : 'DOWN   '} pid ${p.pid ?? '-'}  ${p.healthy ? (p.url ?? '') : p.detail}\n`);
      }
      // What stages started and have not stopped yet (`dev down` stops these too).
      for (const r of stageProcesses(config)) {
        const run = r.activity ? `, ${r.activity.activityType} of ${r.activity.workflowId}` : '';
        process.stdout.write(`stage     process ${r.process.pid}  ${r.what}${run}, since ${r.startedAt}\n`);
      }
      return parts.every((p) => p.healthy) ? 0 : 1;
    }
    default:
      throw new UsageError(`expected up, down or status\nusage: ${USAGE}`);
  }
}
