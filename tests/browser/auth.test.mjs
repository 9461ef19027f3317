// Actions in the browser follow the team-server rules: a viewer's page has no kill button, and a
// kill forged by hand (fetch from the page) is refused for a viewer, for another user, for an
// anonymous visitor, and without the X-Evald-Request header even with an admin's cookie; the job
// keeps running. An admin's page has the button (the control that the check can fail).
import assert from 'node:assert/strict';
import test from 'node:test';
import { Evald, launch, loadPlaywright, newPage, startModel, tempDir } from './harness.mjs';

const playwright = loadPlaywright();

async function forgeKill(page, id, headers = { 'X-Evald-Request': '1' }) {
  return page.evaluate(
    async ([id, headers]) => {
      const r = await fetch(`/api/v1/invocations/${id}/kill`, { method: 'POST', headers, body: '{}' });
      return { status: r.status, body: await r.json() };
    },
    [id, headers],
  );
}

async function loginPage(browser, evald, id, token) {
  const { context, page } = await newPage(browser);
  await page.goto(`${evald.base}/invocations/${id}`);
  await page.getByTestId('invocation-id').waitFor();
  if (token) {
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByTestId('whoami').getByText('Signed in').waitFor();
  }
  // The invocation is loaded (the page re-mounts on login): the buttons, if any, are drawn with it.
  await page.getByTestId('jobs').waitFor();
  return { context, page };
}

test('viewer and other users get no kill button and a forged kill is refused', async (t) => {
  const dir = tempDir();
  const model = await startModel(dir, ['--latency-ms', '600']);
  const evald = await new Evald(dir).start();
  const browser = await launch(playwright);
  t.after(async () => {
    await browser.close();
    await evald.stop();
  });
  const id = evald.submit(model.url, { samples: 40, parallelism: 1, name: 'slow' });

  const viewer = await loginPage(browser, evald, id, evald.token('victor', 'viewer'));
  await viewer.page.getByTestId('whoami').getByText('victor').waitFor();
  assert.equal(await viewer.page.locator('[data-action=kill]').count(), 0);
  const byViewer = await forgeKill(viewer.page, id);
  assert.equal(byViewer.status, 403, JSON.stringify(byViewer));

  const other = await loginPage(browser, evald, id, evald.token('bob', 'user'));
  assert.equal(await other.page.locator('[data-action=kill]').count(), 0);
  const byOther = await forgeKill(other.page, id);
  assert.equal(byOther.status, 403, JSON.stringify(byOther));

  const anonymous = await loginPage(browser, evald, id, '');
  assert.equal(await anonymous.page.locator('[data-action=kill]').count(), 0);
  assert.equal((await forgeKill(anonymous.page, id)).status, 401);

  const admin = await loginPage(browser, evald, id, evald.token('alice', 'admin'));
  await admin.page.locator('[data-action=kill]').waitFor();
  // A cross-site form cannot set the header: without it even an admin's cookie is refused.
  const noHeader = await forgeKill(admin.page, id, { 'Content-Type': 'text/plain' });
  assert.equal(noHeader.status, 403, JSON.stringify(noHeader));

  const inv = (await evald.api(`/api/v1/invocations/${id}`)).body;
  // Nothing asked the job to stop.
  assert.notEqual(inv.jobs[0].desired, 'DESIRED_STATE_STOP');
  assert.notEqual(inv.jobs[0].state, 'JOB_STATE_KILLED');
  evald.ctl(['kill', id], { allowFail: true });

  // The refused kills are the only console errors (the browser logs every 4xx response).
  for (const p of [viewer.page, other.page, anonymous.page, admin.page]) {
    assert.deepEqual(p.consoleErrors.filter((e) => !e.includes(`/api/v1/invocations/${id}/kill`)), []);
  }
});
