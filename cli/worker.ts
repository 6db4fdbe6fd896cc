// prm-raft worker — a worker alone, for the embedded stack or a machine of its own.
import { processRegistryDir } from '../clients/process-registry.js';
import { createWorkers, runWorkers } from '../stack/worker.js';
import { connectWorker, resolveTemporalTarget } from '../stack/temporal-connection.js';
import { DEFAULT_CONFIG, parseFlags } from './flags.js';
import { loadConfig, UsageError } from './load-config.js';

const USAGE = 'prm-raft worker [--config FILE] [--queues cpu,gpu]';

export async function workerCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { config: { type: 'string', default: DEFAULT_CONFIG }, queues: { type: 'string', default: 'cpu,gpu' } }, USAGE);
  const serve = values.queues.split(',').map((q) => q.trim());
  for (const q of serve) if (q !== 'cpu' && q !== 'gpu') throw new UsageError(`--queues: "${q}" is not cpu or gpu\nusage: ${USAGE}`);
  const config = await loadConfig(values.config);
  const target = resolveTemporalTarget(config.temporal);
  const connection = await connectWorker(target);
  const workers = await createWorkers({
    connection,
    namespace: target.namespace,
    taskQueues: config.temporal.taskQueues,
    serve: serve as Array<'cpu' | 'gpu'>,
    // What stages of this store started: a worker that starts here reaps what a killed one left behind.
    processDirs: [processRegistryDir(config.store.root)],
  });
  process.stderr.write(`worker: ${target.address} namespace ${target.namespace}, queues ${serve.map((q) => config.temporal.taskQueues[q as 'cpu' | 'gpu']).join(', ')}\n`);
  await runWorkers(workers, { connection, namespace: target.namespace });
  await connection.close();
  return 0;
}
