// The compare page against two finished runs with known scores: the same 40 arith samples on a
// model that answers all right and one that answers about half wrong (fixed seed). The page's
// values, difference and significance must be what `evalctl compare --json` says.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Evald, launch, loadPlaywright, newPage, screenshot, startModel, tempDir, waitFor } from './harness.mjs';

const playwright = loadPlaywright();

test('compare page: difference and significance of two runs', async (t) => {
  const dir = tempDir();
  const good = await startModel(dir);
  const worse = await startModel(dir, ['--accuracy', '0.5', '--seed', '7']);
  const evald = await new Evald(dir).start();
  const browser = await launch(playwright);
  t.after(async () => {
    await browser.close();
    await evald.stop();
  });
  const a = evald.submit(good.url, { samples: 40, name: 'a', wait: true });
  const b = evald.submit(worse.url, { samples: 40, name: 'b', wait: true });
  const cli = JSON.parse(evald.ctl(['compare', a, b, '--json']).stdout).metrics[0];
  assert.equal(cli.a, 1);
  assert.ok(cli.b < 0.8);

  const { page } = await newPage(browser);
  await page.goto(`${evald.base}/compare?ids=${a},${b}`);
  const table = page.getByTestId('compare');
  await table.waitFor();
  const cells = await table.locator('tbody tr').first().locator('td').allInnerTexts();
  // task, metric, value a, value b, difference, significance
  assert.equal(cells[0], 'arith');
  assert.equal(cells[1], 'accuracy/exact_match');
  assert.equal(Number(cells[2]), 1);
  assert.ok(Math.abs(Number(cells[3]) - cli.b) < 1e-4, `${cells[3]} vs ${cli.b}`);
  assert.ok(Math.abs(Number(cells[4]) - cli.diff) < 1e-4, `${cells[4]} vs ${cli.diff}`);
  assert.ok(cells[4].startsWith('-'));
  assert.match(cells[5], /^significant \(p = [0-9.e-]+, mcnemar_exact, 40 paired\)/);
  // The page prints the p-value evald computed (a tiny one in scientific notation).
  const p = Number(cells[5].match(/p = ([0-9.e-]+)/)[1]);
  assert.ok(Math.abs(p - cli.p_value) <= cli.p_value * 0.06, `${p} vs ${cli.p_value}`);
  await page.locator('.chart canvas').first().waitFor();
  await screenshot(page, 'compare');

  // The finished run's page has its results table.
  await page.goto(`${evald.base}/invocations/${b}`);
  await page.getByTestId('results').waitFor();
  const value = await page.locator('[data-testid=results] tbody tr td.num').first().innerText();
  assert.ok(Math.abs(Number(value) - cli.b) < 1e-4);
  await screenshot(page, 'results');
  // A deep link to one job's stderr picks both in the log's selectors.
  await page.goto(`${evald.base}/invocations/${b}?job=${b}.0&stream=stderr`);
  await page.getByTestId('jobs').waitFor();
  assert.equal(await page.locator('select[name=log-stream]').inputValue(), 'stderr');
  assert.equal(await page.locator('select[name=log-job]').inputValue(), `${b}.0`);

  // The list's keyset paging, one row a page: newest (b) first, Older gives a, Newer b again;
  // the id search and a state filter.
  const rows = page.locator('[data-testid=invocations] tbody tr');
  await page.goto(`${evald.base}/?limit=1`);
  await page.locator(`tr[data-invocation="${b}"]`).waitFor();
  await page.getByRole('button', { name: 'Older →' }).click();
  await page.locator(`tr[data-invocation="${a}"]`).waitFor();
  assert.equal(await rows.count(), 1);
  await page.getByRole('button', { name: '← Newer' }).click();
  await page.locator(`tr[data-invocation="${b}"]`).waitFor();
  assert.equal(await rows.count(), 1);
  await page.goto(`${evald.base}/`);
  await page.getByLabel('Invocation id').fill(a);
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(`**/?q=${a}`);
  // Until the filtered page arrives the unfiltered rows are still shown.
  await waitFor(async () => (await rows.count()) === 1, 5000);
  await page.locator(`tr[data-invocation="${a}"]`).waitFor();
  await page.getByLabel('State').selectOption('failed');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.getByText('No invocations.').waitFor();

  assert.deepEqual(page.consoleErrors, []);
});
