// The list page in Chromium with N invocations stored (issue 15: < 300 ms with 100,000): fills a
// state dir with `evald_dashboard_bench populate` (bench/dashboard/run's filler) unless
// --state-dir names a filled one, starts a real evald on it, and times, in Debian's Chromium,
// from navigation to the 50th row of the first page on screen: cold (a new browser context,
// so the page's assets are fetched too) and warm (reload). Not part of ctest.
//   node bench/dashboard/browser.mjs [--invocations N] [--loads N] [--state-dir DIR]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN_DIR, Evald, launch, loadPlaywright, newPage, tempDir } from '../../tests/browser/harness.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const invocations = Number(opt('invocations', 100000));
const loads = Number(opt('loads', 20));
const dir = tempDir();
const stateDir = opt('state-dir', path.join(dir, 'state'));

const playwright = loadPlaywright();
console.log(`machine: load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (1/5/15 min)`);
if (!fs.existsSync(path.join(stateDir, 'evald.db'))) {
  const t = Date.now();
  const r = spawnSync(path.join(BIN_DIR, 'evald_dashboard_bench'),
    ['populate', '--state-dir', stateDir, '--invocations', String(invocations)], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(1);
  console.log(`populated ${invocations} invocations in ${((Date.now() - t) / 1000).toFixed(0)} s`);
}

const evald = new Evald(dir);
evald.stateDir = stateDir;
evald.address = `unix://${stateDir}/evald.sock`;
await evald.start();
const browser = await launch(playwright);
const lastRow = '[data-testid=invocations] tbody tr:nth-child(50)';

// Measured by the page's own clock: performance.now() (ms since the navigation started) at the
// first animation frame with the 50th row in the DOM, taken by a rAF loop that an init script
// starts before the page's own script runs and reported as a console message. (Playwright's
// waitForFunction would inject and compile its own script into the page while it loads: 30-90 ms
// of the page's main thread on this machine, counted against the page.)
async function timeLoad(page, how) {
  const reported = page.waitForEvent('console', (m) => m.text().startsWith('evald-rows-at '));
  await (how === 'cold' ? page.goto(`${evald.base}/`) : page.reload());
  const [, rows, firstByte] = (await reported).text().split(' ').map(Number);
  return { rows: Math.round(rows), firstByte: Math.round(firstByte) };
}
const watchRows = (sel) => {
  const tick = () => {
    if (document.querySelector(sel)) {
      // responseStart: the first byte of evald's HTML, on the same clock.
      const nav = performance.getEntriesByType('navigation')[0];
      console.log(`evald-rows-at ${performance.now()} ${nav ? nav.responseStart : -1}`);
    }
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};

const cold = [];
const warm = [];
for (let i = 0; i < loads; ++i) {
  const { context, page } = await newPage(browser);
  await page.addInitScript(watchRows, lastRow);
  cold.push(await timeLoad(page, 'cold'));
  warm.push(await timeLoad(page, 'warm'));
  if (page.consoleErrors.length) console.log('console errors:', page.consoleErrors);
  await context.close();
}
await browser.close();
await evald.stop();

const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
console.log(`list page, first 50 rows on screen, ${loads} loads each, 1366x768:`);
console.log('                        p50 ms   p99 ms   max ms   (first byte of the HTML: p50 / p99 ms)');
for (const [name, loads] of [['cold (new context)', cold], ['warm (reload)', warm]]) {
  const xs = loads.map((l) => l.rows);
  const fb = loads.map((l) => l.firstByte);
  console.log(`${name.padEnd(22)} ${String(pct(xs, 50)).padStart(7)} ${String(pct(xs, 99)).padStart(8)} ${String(Math.max(...xs)).padStart(8)}   (${pct(fb, 50)} / ${pct(fb, 99)})`);
}
if (!opt('state-dir')) fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
