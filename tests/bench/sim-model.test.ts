// The paper-scale bench's throughput model and busy accounting (bench/sim/model.ts, bench/sim/gpus.ts).
import { describe, expect, it } from 'vitest';
import { SimConfig } from '../../bench/sim/config.js';
import { Gpu, type Tenant } from '../../bench/sim/gpus.js';
import {
  addInterval,
  advanceBatch,
  busyShares,
  chooseCompression,
  decodeStepSeconds,
  decodeTokensPerSecond,
  idealOverlapSeconds,
  mergeIntervals,
  overlapMs,
  PrefixCache,
  sftSeconds,
  splitGpus,
  textTokens,
  type Interval,
  type Sequence,
} from '../../bench/sim/model.js';
import { PolicyReplica } from '../../bench/sim/policy-stub.js';

const sim = SimConfig.parse({});
const p = sim.policy;

describe('token counts', () => {
  it('adds the step markers to the unmarked characters', () => {
    expect(textTokens('1 + 2 = 3 [40 tok]\n3 + 4 = 7 [25 tok]', 1000)).toBe(65 + 1);
    expect(textTokens('abcdefgh', 4)).toBe(2);
    expect(textTokens('abcdefghi', 4)).toBe(3);
    expect(textTokens('', 4)).toBe(0);
  });
});

describe('continuous batching', () => {
  it('decodes faster in total but slower per sequence as the batch grows', () => {
    expect(decodeTokensPerSecond(256, p)).toBeGreaterThan(decodeTokensPerSecond(64, p));
    expect(decodeTokensPerSecond(64, p)).toBeGreaterThan(decodeTokensPerSecond(1, p));
    expect(decodeStepSeconds(256, p)).toBeGreaterThan(decodeStepSeconds(1, p));
    // The defaults: ~140 tokens/s alone, ~10,300 tokens/s at the batch ceiling.
    expect(decodeTokensPerSecond(1, p)).toBeCloseTo(1000 / 7.07, 3);
    expect(decodeTokensPerSecond(p.maxBatch, p)).toBeGreaterThan(10_000);
    expect(decodeTokensPerSecond(p.maxBatch, p)).toBeLessThan(10_500);
  });

  it('takes tokens × step time for one sequence, and finishes it only at the end', () => {
    const one: Sequence = { prefill: 0, decode: 100 };
    const half = advanceBatch([one], 50 * decodeStepSeconds(1, p), p);
    expect(half.finished).toEqual([]);
    expect(one.decode).toBeCloseTo(50, 6);
    const rest = advanceBatch([one], 10, p);
    expect(rest.finished).toEqual([one]);
    expect(rest.used).toBeCloseTo(50 * decodeStepSeconds(1, p), 9);
  });

  it('prefills before it decodes', () => {
    const s: Sequence = { prefill: p.prefillTokensPerSecond, decode: 10 };
    const r = advanceBatch([s], 0.5, p);
    expect(r.used).toBeCloseTo(0.5, 9);
    expect(s.prefill).toBeCloseTo(p.prefillTokensPerSecond / 2, 6);
    expect(s.decode).toBe(10);
  });

  it('decodes a full batch at the batch rate', () => {
    const batch = Array.from({ length: 256 }, () => ({ prefill: 0, decode: 1e6 }));
    advanceBatch(batch, 1, p);
    const decoded = batch.reduce((n, s) => n + (1e6 - s.decode), 0);
    expect(decoded).toBeCloseTo(decodeTokensPerSecond(256, p), 3);
  });

  it('stops when the first sequence finishes, so its slot can be filled', () => {
    const short = { prefill: 0, decode: 10 };
    const long = { prefill: 0, decode: 100 };
    const r = advanceBatch([short, long], 10, p);
    expect(r.finished).toEqual([short]);
    expect(r.used).toBeCloseTo(10 * decodeStepSeconds(2, p), 9);
    expect(long.decode).toBeCloseTo(90, 9);
  });

  it('uses less than its budget when it runs out of work', () => {
    const r = advanceBatch([{ prefill: 0, decode: 3 }], 10, p);
    expect(r.used).toBeCloseTo(3 * decodeStepSeconds(1, p), 9);
    expect(advanceBatch([], 10, p).used).toBe(0);
  });
});

describe('a simulated vLLM replica', () => {
  it('fills a freed slot within the tick: one sequence at a time, two requests both finish in one long tick', async () => {
    const replica = new PolicyReplica(SimConfig.parse({ policy: { maxBatch: 1 } }), { gsm8k: [[20, 5]], math: [[20, 5]] });
    const finished: string[] = [];
    void replica.complete('[gsm8k #1 a] q', 1, 1024, 0).then(() => finished.push('first'));
    void replica.complete('[gsm8k #2 b] r', 1, 1024, 0).then(() => finished.push('second'));
    const used = replica.advance(60);
    await new Promise((r) => setTimeout(r, 0));
    expect(finished).toEqual(['first', 'second']);
    expect(used).toBeLessThan(60);
    expect(replica.hasWork()).toBe(false);
  });
});

describe('prefix cache', () => {
  it('finds the longest cached line-end prefix', () => {
    const c = new PrefixCache(100);
    const q = 'Question: q\nAnswer:\n';
    expect(c.lookupAndInsert(`${q}step 1\n`)).toBe(0);
    expect(c.lookupAndInsert(`${q}step 1\nstep 2\n`)).toBe(`${q}step 1\n`.length);
    expect(c.lookupAndInsert(`${q}other\n`)).toBe(q.length);
    expect(c.lookupAndInsert('Question: r\nAnswer:\n')).toBe(0);
  });

  it('forgets the least recently used prefixes beyond its capacity', () => {
    const c = new PrefixCache(2);
    c.lookupAndInsert('a\n');
    c.lookupAndInsert('b\n');
    c.lookupAndInsert('c\n');
    expect(c.lookupAndInsert('c\ny')).toBe(2);
    expect(c.lookupAndInsert('a\nx')).toBe(0);
  });
});

describe('GPU split and compression', () => {
  it('shares the only GPU', () => {
    expect(splitGpus(1, 10, 1)).toEqual({ gpus: 1, policy: 1, prm: 1, shared: true });
    expect(idealOverlapSeconds(splitGpus(1, 10, 4), 10, 4)).toBe(14);
  });

  it('gives each side at least one GPU and balances the work', () => {
    expect(splitGpus(2, 100, 1)).toMatchObject({ policy: 1, prm: 1, shared: false });
    expect(splitGpus(4, 3, 1)).toMatchObject({ policy: 3, prm: 1 });
    expect(splitGpus(8, 1, 1)).toMatchObject({ policy: 4, prm: 4 });
    expect(splitGpus(8, 2.9, 2.1)).toMatchObject({ policy: 5, prm: 3 });
    expect(idealOverlapSeconds(splitGpus(4, 3, 1), 3, 1)).toBe(1);
    expect(() => splitGpus(0, 1, 1)).toThrow(/positive integer/);
  });

  it('compresses so the ideal time lasts the target, never below the minimum', () => {
    expect(chooseCompression(18_000, 150)).toBe(120);
    expect(chooseCompression(10, 150)).toBe(1);
    expect(chooseCompression(10, 150, 5)).toBe(5);
    expect(() => chooseCompression(10, 0)).toThrow();
  });

  it('prices SFT as start-up + tokens × epochs over all GPUs + the save', () => {
    const s = { tokensPerSecondPerGpu: 1000, startupSeconds: 10, saveSeconds: 5 };
    expect(sftSeconds(8000, 3, 8, s)).toBe(10 + 3 + 5);
    expect(sftSeconds(8000, 3, 1, s)).toBe(10 + 24 + 5);
  });
});

describe('busy accounting', () => {
  it('merges touching intervals and keeps them sorted', () => {
    const xs: Interval[] = [];
    addInterval(xs, 0, 10);
    addInterval(xs, 10, 20);
    addInterval(xs, 25, 30);
    addInterval(xs, 26, 27, 0);
    expect(xs).toEqual([[0, 20], [25, 30]]);
    addInterval(xs, 22, 24, 1);
    expect(xs).toEqual([[0, 20], [22, 30]]);
    addInterval(xs, 5, 5);
    expect(xs).toEqual([[0, 20], [22, 30]]);
  });

  it('sorts an interval that comes late', () => {
    const xs: Interval[] = [[10, 20]];
    addInterval(xs, 0, 5);
    expect(xs).toEqual([[0, 5], [10, 20]]);
    expect(mergeIntervals([[5, 8], [0, 6], [9, 9]])).toEqual([[0, 8]]);
  });

  it('measures the share of a window each GPU was busy, overlaps counted once', () => {
    expect(overlapMs([[0, 10], [20, 30]], 5, 25)).toBe(10);
    const shares = busyShares([[[0, 50], [25, 75]], [], [[0, 200]]], 0, 100);
    expect(shares).toEqual([0.75, 0, 1]);
    expect(busyShares([[[0, 10]]], 10, 10)).toEqual([0]);
  });
});

describe('a GPU shared by two engines', () => {
  const tenant = (work: number): Tenant & { left: number } => {
    const t = {
      left: work,
      hasWork: () => t.left > 0,
      advance: (budget: number) => {
        const used = Math.min(budget, t.left);
        t.left -= used;
        return used;
      },
    };
    return t;
  };

  it('splits its time evenly between engines with work', () => {
    const gpu = new Gpu(0);
    const [a, b] = [tenant(10), tenant(10)];
    gpu.tenants.push(a, b);
    expect(gpu.step(2)).toBe(1);
    expect(a.left).toBe(9);
    expect(b.left).toBe(9);
  });

  it('gives what one engine leaves over to the other, and reports the share it was busy', () => {
    const gpu = new Gpu(0);
    const [a, b] = [tenant(0.2), tenant(10)];
    gpu.tenants.push(a, b);
    expect(gpu.step(2)).toBe(1);
    expect(a.left).toBe(0);
    expect(b.left).toBeCloseTo(8.2, 9);
    const idle = new Gpu(1);
    idle.tenants.push(tenant(0.5));
    expect(idle.step(2)).toBe(0.25);
  });
});
