// `prm-raft labels` through the built CLI, as a user runs it (dist/ comes from `make build`, which make test runs).
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/stack.js';

const labels = async (...args: string[]) => {
  const r = await execa(process.execPath, [join(ROOT, 'bin', 'prm-raft.js'), 'labels', ...args], { cwd: ROOT, reject: false, stripFinalNewline: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
};

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'labels.js'))) throw new Error('dist/ has no labels command: run `make build` (make test does)');
});

describe('prm-raft labels', () => {
  it('prints one JSON object with the three labels', async () => {
    const r = await labels('--k', '1', '--m', '4', '--eta', '2');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^\{[^\n]*\}\n$/);
    const out = JSON.parse(r.stdout) as Record<string, number>;
    expect(Object.keys(out)).toEqual(['hard', 'soft', 'er']);
    expect(out.hard).toBe(1);
    expect(out.soft).toBe(0.25);
    expect(out.er).toBeCloseTo(0.4772292963966203, 14);
  });
  it('takes η negative, in exponent form, and at ±1000', async () => {
    const neg = await labels('--k', '15', '--m', '16', '--eta', '-1000');
    expect(neg.exitCode).toBe(0);
    expect(JSON.parse(neg.stdout).er).toBeCloseTo(Math.log(16) / 1000, 14);
    const exp = await labels('--k=1', '--m=16', '--eta=1e3');
    expect(JSON.parse(exp.stdout).er).toBeCloseTo(1 - Math.log(16) / 1000, 14);
    const small = await labels('--k', '1', '--m', '4', '--eta', '0.1');
    expect(JSON.parse(small.stdout)).toEqual({ hard: 1, soft: 0.25, er: expect.closeTo(0.25 + 0.1875 * 0.05, 3) });
  });
  it('exits 2 naming --k and its range when k > m', async () => {
    const r = await labels('--k', '5', '--m', '4', '--eta', '1');
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--k: expected an integer from 0 to --m (4), got "5"');
  });
  it('exits 2 naming --eta when it is not a number', async () => {
    const r = await labels('--k', '1', '--m', '4', '--eta', 'abc');
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--eta: expected a finite real number.*got "abc"/);
  });
  it('exits 2 for a missing flag, a fractional count and an infinite η', async () => {
    for (const [args, message] of [
      [['--k', '1', '--m', '4'], '--eta is required'],
      [['--k', '1.5', '--m', '4', '--eta', '1'], '--k: expected an integer from 0 to --m (4), got "1.5"'],
      [['--k', '1', '--m', '0', '--eta', '1'], '--m: expected a positive integer, got "0"'],
      [['--k', '1', '--m', '4', '--eta', '1e999'], '--eta: expected a finite real number'],
    ] as const) {
      const r = await labels(...args);
      expect([r.exitCode, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toContain(message);
    }
  });
});
