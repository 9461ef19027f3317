// The list page's first screen comes with GET /'s HTML (daemon/dashboard/list_html.h): with the
// page's script off the 50 rows are there, stored values shown as text (an owner named like a
// tag stays text and runs nothing), and with the script on the rows are on screen from the first
// frame through the script's takeover, never replaced by an empty page, and the page then works
// as before (paging, no console errors).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { BIN_DIR, DATA_DIR, Evald, launch, loadPlaywright, newPage, skip, startModel, tempDir } from './harness.mjs';

const playwright = loadPlaywright();
const filler = path.join(BIN_DIR, 'evald_dashboard_bench');
if (!fs.existsSync(filler)) skip(`${filler} not built (ninja -C build evald_dashboard_bench)`);

// No space, '/' or ':' (evald refuses those in a token's user), but a form feed separates
// attributes in HTML just as well.
const EVIL = `<img\fsrc=x\fonerror=window.pwned=1>"'&amp;`;
const ROWS = '[data-testid=invocations] tbody tr';

test('the list page has its first 50 rows in the HTML, escaped, kept through the script', async (t) => {
  const dir = tempDir();
  const evald = new Evald(dir);
  const filled = spawnSync(filler, ['populate', '--state-dir', evald.stateDir, '--invocations', '60'], { stdio: 'inherit' });
  assert.equal(filled.status, 0);
  const model = await startModel(dir);
  await evald.start();
  const browser = await launch(playwright);
  t.after(async () => {
    await browser.close();
    await evald.stop();
  });
  // The newest invocation is submitted by a user with a hostile name, through the real API.
  // (A token's user writes under the server's output root only.)
  const cfg = path.join(dir, 'evil.yaml');
  fs.writeFileSync(cfg, [
    'defaults:', '  - execution: local', '  - deployment: none', '  - _self_',
    'execution:', `  output_dir: ${evald.stateDir}/runs/evil`, '  mode: parallel',
    'target:', '  api_endpoint:', `    url: ${model.url}`, '    model_id: ref-model', '    api_key_name: null',
    'evaluation:', '  overrides:', '    config.params.limit_samples: 4', '  tasks:',
    '    - name: arith', `      task_file: ${DATA_DIR}/arith_task.yaml`, '',
  ].join('\n'));
  process.env.EVALD_TOKEN = evald.token(EVIL, 'user');
  const id = JSON.parse(evald.ctl(['submit', cfg, '--json', '--wait']).stdout).invocation_id;
  delete process.env.EVALD_TOKEN;

  // Without the page's script: evald's markup alone.
  const noScript = await browser.newContext({ viewport: { width: 1366, height: 768 }, javaScriptEnabled: false });
  const bare = await noScript.newPage();
  await bare.goto(`${evald.base}/`);
  assert.equal(await bare.locator(ROWS).count(), 50);
  const first = bare.locator(ROWS).first();
  assert.equal(await first.getAttribute('data-invocation'), id);
  assert.equal(await first.locator('td').nth(4).textContent(), EVIL);
  assert.equal(await bare.locator('[data-testid=invocations] img').count(), 0);
  assert.equal(await first.locator('a').getAttribute('href'), `/invocations/${id}`);
  assert.equal(await bare.getByTestId('stream-status').textContent(), 'connecting');
  // What needs the script waits for it.
  assert.ok(await bare.getByRole('button', { name: 'Apply' }).isDisabled());
  assert.ok(await bare.getByRole('button', { name: 'Older →' }).isDisabled());
  assert.equal(await bare.getByLabel('Owner').getAttribute('readonly'), '');
  await noScript.close();

  // With it: every animation frame from the first one has the 50 rows until the stream is live.
  const { page } = await newPage(browser);
  await page.addInitScript((sel) => {
    window.rowCounts = [];
    const tick = () => {
      window.rowCounts.push(document.querySelectorAll(sel).length);
      const status = document.querySelector('[data-testid=stream-status]');
      if (!status || status.textContent !== 'live') requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, ROWS);
  await page.goto(`${evald.base}/`);
  await page.getByTestId('stream-status').getByText('live').waitFor();
  const counts = await page.evaluate(() => window.rowCounts);
  assert.ok(counts.length > 0);
  assert.deepEqual([...new Set(counts)], [50], `rows per frame: ${counts.join(',')}`);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.ok(await page.getByRole('button', { name: 'Apply' }).isEnabled());
  assert.equal(await page.getByLabel('Owner').getAttribute('readonly'), null);
  assert.equal(await page.locator(ROWS).first().locator('td').nth(4).textContent(), EVIL);
  assert.equal(await page.locator('[data-testid=invocations] img').count(), 0);
  // The script's page works on the reused markup: paging and the row link.
  await page.getByRole('button', { name: 'Older →' }).click();
  await page.waitForURL((u) => u.searchParams.has('page_token'));
  await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 11, ROWS);
  await page.goto(`${evald.base}/`);
  await page.locator(`tr[data-invocation="${id}"] a`).click();
  await page.getByTestId('invocation-id').waitFor();
  assert.equal(await page.locator(ROWS).count(), 0);
  assert.deepEqual(page.consoleErrors, []);
});
