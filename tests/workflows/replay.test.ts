// Replays every recorded workflow history (tests/fixtures/histories/*.json) against today's workflow code: a change
// that would break a running workflow (a nondeterministic one) fails here. And every workflow the worker serves has
// such a history, so a new workflow cannot go unchecked.
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as workflows from '../../workflows/index.js';
import { HISTORIES_DIR, recordCommand, workflowBundle, workflowFileName, type HistoryFixture } from '../helpers/temporal.js';

interface RecordedHistory {
  events?: Array<{ workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }>;
}

const fixtures = readdirSync(HISTORIES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => {
    const { workflowId, history } = JSON.parse(readFileSync(`${HISTORIES_DIR}/${file}`, 'utf8')) as HistoryFixture;
    // The workflow type as the history itself says, whatever the file is called.
    const type = (history as RecordedHistory).events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
    return { file, workflowId, history, type };
  });

/** The workflows the worker serves: the functions workflows/index.ts exports (its queries are definitions, not functions). */
const served = Object.entries(workflows)
  .filter(([, value]) => typeof value === 'function')
  .map(([name]) => name)
  .sort();

describe('recorded histories', () => {
  it.each(fixtures.map((f) => [f.file, f] as const))('%s replays without nondeterminism', async (_file, { history, workflowId }) => {
    expect(workflowId, 'the fixture names the workflow id it ran under (recordHistory writes it)').toEqual(expect.any(String));
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, workflowId)).resolves.toBeUndefined();
  });

  it('fails on a history today\'s code would not make (the check is live)', async () => {
    const recorded = fixtures.find((f) => f.type === 'evaluatePolicy');
    expect(recorded, 'tests/fixtures/histories/evaluate-policy.json').toBeDefined();
    // The first activity the workflow scheduled, renamed: replaying must notice the code schedules another one.
    const history = structuredClone(recorded!.history) as { events: Array<{ activityTaskScheduledEventAttributes?: { activityType: { name: string } } }> };
    const scheduled = history.events.find((e) => e.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!;
    scheduled.activityType.name = 'aRenamedActivity';
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, recorded!.workflowId)).rejects.toThrow(/[Nn]ondetermin|aRenamedActivity/);
  });

  it('every fixture is the history of a workflow the worker serves', () => {
    expect(fixtures.filter((f) => f.type === undefined || !served.includes(f.type)).map((f) => `${f.file}: ${f.type ?? 'no WorkflowExecutionStarted event'}`)).toEqual([]);
    // One fixture per workflow, named after its workflow file, as recordHistory writes it.
    expect(fixtures.map((f) => f.file)).toEqual(fixtures.map((f) => `${workflowFileName(f.type ?? '?')}.json`));
  });

  it('every workflow the worker serves has a recorded history', () => {
    expect(served.length).toBeGreaterThanOrEqual(6);
    const recorded = new Set(fixtures.map((f) => f.type));
    const missing = served.filter((name) => !recorded.has(name));
    expect(
      missing.map((name) => `${name} has no recorded history in tests/fixtures/histories: call recordHistory(env.client, workflowId) in one test of its workflow test file, then run ${recordCommand(name)}`),
    ).toEqual([]);
  });
});
