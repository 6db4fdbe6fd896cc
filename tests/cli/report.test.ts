// `prm-raft report RUN`: a comparison's report rebuilt from its stored summary and selected-responses files.
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ComparisonResult } from '../../core/comparison.js';
import { toJsonl } from '../../store/files.js';
import { comparison, selectedScores } from '../report/fixtures.js';
import { ROOT } from '../helpers/stack.js';

const report = async (args: string[]) => {
  const r = await execa(process.execPath, [join(ROOT, 'bin', 'prm-raft.js'), 'report', ...args], { cwd: ROOT, reject: false });
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
};

describe('prm-raft report', () => {
  it('rebuilds the tables and the page of a finished comparison from its folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prm-raft-report-'));
    const selected: ComparisonResult['selected'] = {};
    for (const [name, scores] of Object.entries(selectedScores)) {
      const uri = join(dir, `${name.length}.selected.jsonl`);
      await writeFile(uri, toJsonl(scores.map((score, i) => ({ id: `q${i}`, index: 0, score, correct: true, extracted: '1' }))));
      selected[name] = { uri, count: scores.length, sha256: 'x' };
    }
    const files = { html: join(dir, 'report.html'), markdown: join(dir, 'table.md'), csv: join(dir, 'table.csv'), json: join(dir, 'table.json') };
    const summary: ComparisonResult = { kind: 'comparison', runDir: dir, table: comparison, selected, report: files };
    await writeFile(join(dir, 'summary.json'), JSON.stringify(summary));

    const r = await report([dir]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(files.html);
    const html = await readFile(files.html, 'utf8');
    // Both plots: the before/after bars and the selected-score histograms.
    expect(html.match(/<svg/g)?.length).toBe(2);
    expect(await readFile(files.markdown, 'utf8')).toContain('77.9');
    expect(JSON.parse(await readFile(files.json, 'utf8'))).toEqual(comparison);
  }, 60_000);

  it('says why when the run has not finished', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'prm-raft-report-'));
    const r = await report([dir]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('has no summary.json: the run has not finished');
  }, 60_000);
});
