// The written report pages opened in headless Chromium (Debian's, installed by `make test`): they load
// offline without errors and show every plot and the right numbers.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBestOfNReport, writeComparisonReport } from '../../report/write-report.js';
import { bestOfN, comparison, selectedScores } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium phones home, and the closed network refuses it noisily.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser: Browser;
let dir: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: \`make test\` installs it (apt-get install chromium)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  dir = await mkdtemp(join(tmpdir(), 'report-'));
});

afterAll(async () => {
  await browser?.close();
});

interface Loaded {
  page: Page;
  problems: string[];
}

/** Opens a page and records whatever went wrong: console errors and warnings, page errors, any fetch at all. */
async function open(path: string): Promise<Loaded> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (r.url() !== pathToFileURL(path).href) problems.push(`request: ${r.url()}`);
  });
  await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
  return { page, problems };
}

/** Every plot is visible, has a size, and drew marks (vega draws lines, bars and points as paths). */
async function expectPlots(page: Page, count: number): Promise<void> {
  const plots = page.locator('figure > svg');
  expect(await plots.count()).toBe(count);
  for (const plot of await plots.all()) {
    await expect.poll(() => plot.isVisible()).toBe(true);
    const box = await plot.boundingBox();
    expect(box?.width).toBeGreaterThan(100);
    expect(box?.height).toBeGreaterThan(100);
    expect(await plot.locator('path').count()).toBeGreaterThan(3);
  }
}

describe('HTML reports in headless Chromium', () => {
  it('shows the comparison: bars, score histograms and Table 1 with the right numbers', async () => {
    const files = await writeComparisonReport(join(dir, 'compare'), comparison, selectedScores);
    expect(JSON.parse(await readFile(files.json, 'utf8'))).toEqual(comparison);
    expect(await readFile(files.markdown, 'utf8')).toContain('| baseline | 77.9 |');
    expect(await readFile(files.csv, 'utf8')).toContain('ER-PRM,prm,0.795,0.0111,0.016,0.0075,60,39');

    const { page, problems } = await open(files.html);
    await expectPlots(page, 2);
    const table = page.locator('table');
    expect(await table.count()).toBe(1);
    const cells = (row: number) => table.locator('tbody tr').nth(row).locator('td').allInnerTexts();
    expect(await cells(0)).toEqual(['baseline', '77.9', '1.1', '—', '—', '—', '31.2', '2.1', '—', '—', '—', '—', '—', '']);
    expect(await cells(1)).toEqual(['ER-PRM', '79.5', '1.1', '+1.6', '0.8', '60/39', '31.8', '2.1', '+0.6', '1.4', '25/22', '82.4', '0.912', '']);
    expect((await cells(3)).at(-1)).toBe('SFT failed: out of memory | step 12');
    // A name with markup is shown as text, not parsed.
    expect(await cells(2).then((c) => c[0])).toBe('hard <b>&</b> soft');
    expect(await page.locator('body b').count()).toBe(0);
    expect(await page.locator('figure > svg').first().textContent()).toContain('hard <b>&</b> soft');
    expect(await page.locator('body').innerText()).toContain('ORM: no accuracy, so not in the plot.');
    expect(await page.locator('body').innerText()).toContain('for Δ the paired √((g + l)/n − Δ²)/√n over the g questions gained and l lost');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows best-of-N: the accuracy-against-N plot and one table per reward model with its flag', async () => {
    const files = await writeBestOfNReport(join(dir, 'bon'), bestOfN);
    expect(await readFile(files.markdown, 'utf8')).toContain('| 2 | 46.0 ± 1.2 | 43.0 | 45.0 | 55.0 | 0 |');

    const { page, problems } = await open(files.html);
    await expectPlots(page, 1);
    const legend = await page.locator('figure > svg').textContent();
    for (const label of ['ER-PRM', 'ORM', 'majority vote', 'pass@N', 'N (responses per problem)']) expect(legend).toContain(label);
    expect(await page.locator('table').count()).toBe(2);
    expect(await page.locator('table').nth(1).locator('tbody tr').nth(3).locator('td').allInnerTexts()).toEqual(['8', '44.0 ± 0.0', '49.0', '48.0', '74.0', '3']);
    expect(await page.locator('body').innerText()).toContain('Reward hacking: yes. Best-of-N peaks at 47.0% (N = 4) and falls to 44.0% at N = 8.');
    expect(problems).toEqual([]);
    await page.close();
  });
});
