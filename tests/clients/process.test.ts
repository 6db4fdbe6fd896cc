// Child processes: exit codes come back as they are, and cancelling kills the whole tree.
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../../clients/process.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('runProcess', () => {
  it('passes stdout lines as they come and returns the exit code and stderr', async () => {
    const lines: string[] = [];
    const result = await runProcess('bash', ['-c', 'echo one; echo two; echo oops >&2; exit 3'], { onStdoutLine: (l) => lines.push(l) });
    expect(lines).toEqual(['one', 'two']);
    expect(result).toEqual({ exitCode: 3, stderrTail: 'oops' });
  });

  it('kills the child and its grandchildren when cancelled, leaving no process behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prm-raft-proc-'));
    const pidFile = join(dir, 'pids');
    const controller = new AbortController();
    // A parent that starts two grandchildren, records their pids, then waits.
    const running = runProcess('bash', ['-c', `sleep 300 & echo $! >> ${pidFile}; sleep 300 & echo $! >> ${pidFile}; echo $$ >> ${pidFile}; wait`], {
      signal: controller.signal,
      killGraceSeconds: 1,
    });
    let pids: number[] = [];
    await waitFor(async () => {
      pids = (await readFile(pidFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
      return pids.length === 3;
    });
    expect(pids.every(alive)).toBe(true);
    controller.abort(new Error('cancelled by test'));
    await expect(running).rejects.toThrow('cancelled by test');
    await waitFor(() => pids.every((p) => !alive(p)));
    expect(pids.filter(alive)).toEqual([]);
  });

  it('rejects when the program does not exist', async () => {
    await expect(runProcess('/nonexistent/program', [])).rejects.toThrow(/nonexistent/);
  });
});
