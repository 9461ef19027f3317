// The dashboard against a real evald with a real (slowed) job: the list shows a new invocation
// within a second of its submission, the invocation page's progress moves while the job runs,
// an admin logged in through the page kills it and both pages then say `killed`; navigating
// closes the previous page's event stream; no console errors; a screenshot of each page.
import assert from 'node:assert/strict';
import test from 'node:test';
import { Evald, launch, loadPlaywright, newPage, screenshot, startModel, tempDir, waitFor } from './harness.mjs';

const playwright = loadPlaywright();

test('list, live progress, log in, kill, tasks', async (t) => {
  const dir = tempDir();
  // 40 samples one at a time at 400 ms each: about 16 s of running job, killed after a few.
  const model = await startModel(dir, ['--latency-ms', '400']);
  const evald = await new Evald(dir).start();
  const browser = await launch(playwright);
  t.after(async () => {
    await browser.close();
    await evald.stop();
  });
  const { page } = await newPage(browser);

  await page.goto(`${evald.base}/`);
  await page.getByTestId('stream-status').getByText('live').waitFor();
  // The first Tab lands on the skip link, which is then visible.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await page.getByText('No invocations.').waitFor();

  const id = evald.submit(model.url, { samples: 40, parallelism: 1, name: 'slow' });
  const submitted = Date.now();
  const row = page.locator(`tr[data-invocation="${id}"]`);
  await row.waitFor({ timeout: 5000 });
  const shownAfter = Date.now() - submitted;
  console.log(`list: invocation ${id} shown ${shownAfter} ms after evalctl submit returned`);
  assert.ok(shownAfter < 1000, `the list showed the new invocation after ${shownAfter} ms`);

  // The list row's progress comes from the stream too.
  await waitFor(async () => Number(await row.getByTestId('row-progress').getAttribute('data-done')) > 0, 20000);
  await screenshot(page, 'list');

  // Deep link by clicking: the History API route, no reload.
  await row.getByRole('link', { name: id }).click();
  await page.getByTestId('invocation-id').getByText(id).waitFor();
  assert.equal(new URL(page.url()).pathname, `/invocations/${id}`);
  const progress = page.getByTestId('job-progress').first();
  const first = await waitFor(async () => Number(await progress.getAttribute('data-done')) || 0, 20000);
  const moved = await waitFor(async () => {
    const n = Number(await progress.getAttribute('data-done'));
    return n > first ? n : 0;
  }, 10000);
  console.log(`invocation page: progress moved from ${first} to ${moved} of 40`);
  assert.ok(moved > first && moved < 40, `progress ${first} -> ${moved}`);
  await page.locator('[data-testid=jobs] [data-state=running]').waitFor();
  // Anonymous (loopback) is read-only: no action buttons.
  assert.equal(await page.locator('[data-action=kill]').count(), 0);
  await screenshot(page, 'invocation');

  // Log in as an admin through the page's token box: the kill button appears.
  const token = evald.token('alice', 'admin');
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('whoami').getByText('alice').waitFor();
  const kill = page.locator('[data-action=kill]');
  await kill.waitFor();
  // By keyboard: the button takes focus and Enter presses it.
  await kill.focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('action-status').getByText('kill: done').waitFor();
  try {
    await page.locator('[data-testid=jobs] [data-state=killed]').waitFor({ timeout: 20000 });
  } catch (e) {
    await screenshot(page, 'failure-kill');  // what the page showed, for the CI artifacts
    console.log(JSON.stringify((await evald.api(`/api/v1/invocations/${id}`)).body.jobs[0]));
    console.log(await page.getByTestId('events').innerText());
    console.log(page.consoleErrors);
    throw e;
  }
  await page.locator('h1 [data-state=killed]').waitFor({ timeout: 20000 });
  const events = await page.getByTestId('events').innerText();
  assert.match(events, /killed/);
  // The kill's events (kill requested, job and invocation killed) reached the open page within
  // 200 ms of evald recording them (issue 15); the median, so one late wake-up under CI load
  // does not decide it.
  const lags = (await page.evaluate(() => window.evaldDashboard.eventLagsMs)).slice().sort((x, y) => x - y);
  const median = lags[Math.floor(lags.length / 2)];
  console.log(`invocation page: ${lags.length} live events, delay after evald recorded them: median ${median} ms, max ${lags[lags.length - 1]} ms`);
  assert.ok(lags.length >= 3 && median < 200, JSON.stringify(lags));
  // evalrun prints its summary to stdout when it is stopped, after the page read the log's tail:
  // the lines come through the page's event stream (log=<job>:stdout).
  await page.getByTestId('log').getByText(/samples \d+\/40/).waitFor({ timeout: 10000 });
  await screenshot(page, 'invocation-killed');

  // Back to the list (the invocation page's stream must close), which says killed too.
  await page.getByRole('link', { name: 'Invocations' }).click();
  await page.locator(`tr[data-invocation="${id}"] [data-state=killed]`).waitFor();
  await waitFor(async () => (await page.evaluate(() => window.evaldDashboard.openStreams)) === 1, 5000);
  const urls = await page.evaluate(() => window.evaldDashboard.streamUrls);
  assert.deepEqual(urls, ['/api/v1/stream']);

  await page.getByRole('link', { name: 'Tasks' }).click();
  await page.getByTestId('tasks').waitFor();
  assert.ok((await page.locator('[data-testid=tasks] tbody tr').count()) > 0);
  await screenshot(page, 'tasks');

  assert.deepEqual(page.consoleErrors, []);
});
