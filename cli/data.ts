// prm-raft data prepare — placeholder until the normalizer lands.
import { UsageError } from './load-config.js';

export async function dataCommand(_args: string[]): Promise<number> {
  throw new UsageError('data prepare: not built yet');
}
