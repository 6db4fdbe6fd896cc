// Evaluation mocks for the RAFT and comparison workflow tests whose answers differ by evaluation, so what the
// workflows compute from them (accuracies, before/after pairing, deltas) is checked, not echoed: each evaluation
// workflow (by its id, e.g. `raft-order-after`) answers a fixed list of questions right or wrong, and the paired
// comparison counts what it gained and lost exactly as compareEvaluations does from the two results files.
import { Context } from '@temporalio/activity';
import type { RaftActivities } from '../helpers/raft-mocks.js';

/** Which questions an evaluation workflow gets right, by its workflow id. */
export type Answers = (evaluationWorkflowId: string) => boolean[];

export function pairedEvaluations(calls: string[], answers: Answers): Pick<RaftActivities, 'evaluateShard' | 'mergeShardResults' | 'compareEvaluations'> {
  /** The evaluation a results file belongs to: the real one writes it at <store>/runs/<workflow id>/results/<dataset>.jsonl. */
  const runOf = (uri: string) => uri.split('/').at(-3) ?? '';
  return {
    async evaluateShard(input) {
      calls.push(`evaluate:${input.policy.model}`);
      const wid = Context.current().info.workflowExecution?.workflowId ?? '';
      const right = answers(wid);
      return {
        uri: `/e/${wid}/${input.shard.index}`,
        count: right.length,
        sha256: `e-${wid}`,
        dataset: input.dataset.name,
        shard: input.shard.index,
        tally: { total: right.length, correct: right.filter(Boolean).length },
        groups: {},
        truncated: 0,
        cached: false,
      };
    },
    async mergeShardResults({ runDir, dataset, shards }) {
      const uri = `${runDir}/results/${dataset}.jsonl`;
      return { uri, count: shards.reduce((n, s) => n + s.count, 0), sha256: `sha-${uri}` };
    },
    async compareEvaluations({ dataset, before, after }) {
      calls.push(`compare:${dataset}:${runOf(before.uri)}->${runOf(after.uri)}`);
      const [b, a] = [answers(runOf(before.uri)), answers(runOf(after.uri))];
      return { dataset, total: b.length, gained: b.filter((ok, i) => !ok && a[i]).length, lost: b.filter((ok, i) => ok && !a[i]).length };
    },
  };
}
