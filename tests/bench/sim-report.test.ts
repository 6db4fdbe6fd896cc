// The paper-scale bench's reading of a run (bench/sim/report.ts), its response shapes (bench/sim/lengths.ts) and the
// SFT stand-in's plan (bench/sim/sft-job.ts).
import { describe, expect, it } from 'vitest';
import { SimConfig } from '../../bench/sim/config.js';
import { answerOf, kindOf, respond, shapeOf } from '../../bench/sim/lengths.js';
import { mulberry32 } from '../../core/random.js';
import { textTokens } from '../../bench/sim/model.js';
import { activityWindows, HISTORY_LIMITS, historyVerdict, hms, simulatedSeconds, stageBusy } from '../../bench/sim/report.js';
import { planSft } from '../../bench/sim/sft-job.js';

const sim = SimConfig.parse({});

describe('stage windows from a history', () => {
  it('spans from the first scheduling of a type to the last close of one of its activities', () => {
    const w = activityWindows([
      { id: 5, time: 100, scheduled: 'sampleShard' },
      { id: 6, time: 110, scheduled: 'sampleShard' },
      { id: 7, time: 120, scheduled: 'scoreShard' },
      { id: 9, time: 300, closesActivity: 6 },
      { id: 10, time: 250, closesActivity: 5 },
      { id: 11, time: 400, closesActivity: 7 },
      { id: 12, time: 500, closesActivity: 99 },
    ]);
    expect(w.get('sampleShard')).toEqual({ start: 100, end: 300, count: 2 });
    expect(w.get('scoreShard')).toEqual({ start: 120, end: 400, count: 1 });
    expect(w.has('runSft')).toBe(false);
  });

  it('scales each stage by its own compression', () => {
    expect(simulatedSeconds({ name: 'SFT', start: 0, end: 2000, compression: 50 })).toBe(100);
    expect(simulatedSeconds({ name: 'select', start: 0, end: 2000, compression: 1 })).toBe(2);
  });

  it('reports each stage\'s mean busy share and each GPU\'s over the run', () => {
    const r = stageBusy(
      [{ name: 'a', start: 0, end: 100, compression: 1 }, { name: 'b', start: 100, end: 200, compression: 1 }],
      [[[0, 100]], [[50, 150]]],
      { start: 0, end: 200 },
    );
    expect(r.stages.map((s) => s.meanBusy)).toEqual([0.75, 0.25]);
    expect(r.overall).toEqual([0.5, 0.5]);
  });
});

describe('history verdicts and the table', () => {
  it('names the share of the warning and the limits', () => {
    expect(historyVerdict(1024, 0)).toBe('10% of the warning');
    expect(historyVerdict(10, HISTORY_LIMITS.warnBytes / 2)).toBe('50% of the warning');
    expect(historyVerdict(HISTORY_LIMITS.warnEvents, 0)).toBe('past the warning');
    expect(historyVerdict(0, HISTORY_LIMITS.maxBytes)).toBe('OVER THE LIMIT');
  });

  it('prints simulated durations as hours', () => {
    expect(hms(3661.4)).toBe('1:01:01');
    expect(hms(59.6)).toBe('0:01:00');
  });
});

describe('response shapes', () => {
  it('counts a solution\'s lines without calculator annotations or blank lines', () => {
    expect(shapeOf('He has 3*4=<<3*4=12>>12 apples\n\n#### 12', 2)).toEqual([Math.round('He has 3*4=12 apples'.length / 2), 4]);
    expect(shapeOf('abcd', 2, 2)).toEqual([4]);
  });

  it('reads the kind and the answer a bench question carries', () => {
    expect(kindOf('Question: [math #12] Find x.\nAnswer:\n')).toBe('math');
    expect(kindOf('Question: [gsm8k #7] Ann…')).toBe('gsm8k');
    expect(answerOf('[gsm8k #-3] x')).toBe('-3');
    expect(answerOf('[math #15 mt-3] x')).toBe('15');
    expect(answerOf('no tag')).toBeNull();
  });

  it('answers with the real steps\' token counts after the prefix, the final line plain', () => {
    const r = respond([10, 20, 30, 5], 0, '42', true, 1000, mulberry32(1));
    const lines = r.text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.at(-1)).toBe('#### 42');
    expect(r.tokens).toBe(65);
    expect(r.truncated).toBe(false);
    expect(textTokens(lines.slice(0, -1).join('\n'), 1e9)).toBe(65 + 1);
    const cont = respond([10, 20, 30, 5], 2, '42', false, 1000, mulberry32(1));
    expect(cont.text.split('\n')).toHaveLength(2);
    expect(cont.text).not.toMatch(/#### 42$/);
  });

  it('cuts a response at max_tokens and says so', () => {
    const r = respond([600, 600, 5], 0, '1', true, 1000, mulberry32(2));
    expect(r.truncated).toBe(true);
    expect(r.tokens).toBe(1000);
    expect(r.text).not.toMatch(/####/);
  });
});

describe('the SFT stand-in', () => {
  it('plans optimizer steps over all GPUs and prices the tokens', () => {
    const records = Array.from({ length: 100 }, () => ({ prompt: 'x'.repeat(32), completion: 'a [90 tok]' }));
    const job = { epochs: 3, per_device_batch_size: 4, gradient_accumulation_steps: 4, max_length: 1536 };
    const eight = planSft(records, job, 8, sim);
    expect(eight.steps).toBe(Math.ceil(300 / 128));
    const perRecord = 90 + Math.ceil(2 / sim.lengths.charsPerToken) + Math.ceil(32 / sim.lengths.questionCharsPerToken);
    expect(eight.tokens).toBe(100 * perRecord);
    expect(planSft(records, job, 1, sim).seconds - sim.sft.startupSeconds - sim.sft.saveSeconds).toBeCloseTo(8 * (eight.seconds - sim.sft.startupSeconds - sim.sft.saveSeconds), 6);
    expect(planSft(records, { ...job, max_length: 50 }, 8, sim).tokens).toBe(5000);
  });
});
