// Browser-test harness: real evald, evalctl, evalrun and ref_endpoint processes of this build on
// a private temp dir (as tests/integration/harness.h does in C++), and Debian's Chromium driven
// by playwright-core (from daemon/dashboard/web/node_modules; Playwright's own browser download
// is not used). Exits 77 (ctest: skipped) when a prerequisite is missing, unless
// EVALD_REQUIRE_BROWSER=1 makes that a failure.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export const SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN_DIR = process.env.EVALD_BIN_DIR || path.join(SOURCE_DIR, 'build/bin');
export const DATA_DIR = path.join(SOURCE_DIR, 'tests/integration/data');
const CHROMIUM = process.env.EVALD_CHROMIUM || '/usr/bin/chromium';
const WEB_DIR = path.join(SOURCE_DIR, 'daemon/dashboard/web');

export function skip(why) {
  if (process.env.EVALD_REQUIRE_BROWSER === '1') {
    console.error(`browser test: ${why} (EVALD_REQUIRE_BROWSER=1: failing)`);
    process.exit(1);
  }
  console.log(`browser test SKIPPED: ${why}`);
  process.exit(77);
}

// playwright-core, or a skip when the web packages or Chromium are missing.
export function loadPlaywright() {
  if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (scripts/setup installs Debian's chromium)`);
  if (!fs.existsSync(path.join(SOURCE_DIR, 'build-web/index.html'))) {
    skip('build-web/ not built (scripts/build runs npm ci && npm run build in daemon/dashboard/web)');
  }
  try {
    return createRequire(path.join(WEB_DIR, 'package.json'))('playwright-core');
  } catch (e) {
    skip(`playwright-core not installed in ${WEB_DIR}/node_modules (scripts/build runs npm ci)`);
  }
  return null;
}

const tempDirs = [];
// Removed at exit when every test passed; kept (evald.log, job outputs) when one failed.
export function tempDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evald-browser-'));
  tempDirs.push(dir);
  return dir;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(fn, timeoutMs = 30000, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms (last: ${last})`);
}

const children = new Set();
function startProcess(argv, logPath, env = {}) {
  const out = fs.openSync(logPath, 'a');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out], env: { ...process.env, ...env } });
  children.add(child);
  child.on('exit', () => children.delete(child));
  child.unref();  // the test's end ends the process; 'exit' below kills what is left
  return child;
}
process.on('exit', (code) => {
  for (const c of children) c.kill('SIGKILL');
  if (code === 0 && !process.exitCode) {
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  } else if (tempDirs.length) {
    console.log(`kept for a look: ${tempDirs.join(' ')}`);
  }
});

// The reference model on a free port; `flags` as for tests/fixtures/ref_endpoint.
export async function startModel(dir, flags = []) {
  const portFile = path.join(dir, `ref-port-${Math.random().toString(36).slice(2)}`);
  const child = startProcess(
    [path.join(BIN_DIR, 'ref_endpoint'), '--host', '127.0.0.1', '--port', '0', '--port-file', portFile,
      '--keys', path.join(DATA_DIR, 'arith_keys.jsonl'), '--model-id', 'ref-model', ...flags],
    `${portFile}.log`,
  );
  const port = await waitFor(() => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, 'utf8').trim()));
  return { child, url: `http://127.0.0.1:${port}/v1/chat/completions` };
}

export class Evald {
  constructor(dir) {
    this.dir = dir;
    this.stateDir = path.join(dir, 'state');
    this.address = `unix://${this.stateDir}/evald.sock`;
  }

  async start() {
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.child = startProcess(
      [path.join(BIN_DIR, 'evald'), '--state-dir', this.stateDir, '--tick-ms', '100',
        '--metrics-listen', `127.0.0.1:${this.port}`],
      path.join(this.dir, 'evald.log'),
    );
    await waitFor(async () => {
      if (this.child.exitCode !== null) throw new Error(`evald exited: ${this.log()}`);
      const r = await fetch(`${this.base}/api/v1/whoami`);
      return r.ok;
    }, 30000, 100);
    const page = await (await fetch(`${this.base}/`)).text();
    if (!/\/assets\/[^"]+\.js/.test(page)) {
      skip('evald serves the fallback page: it was built before build-web/ existed (re-run ninja)');
    }
    return this;
  }

  log() {
    try {
      return fs.readFileSync(path.join(this.dir, 'evald.log'), 'utf8').slice(-4000);
    } catch (e) {
      return '';
    }
  }

  ctl(args, { allowFail = false } = {}) {
    const r = spawnSync(path.join(BIN_DIR, 'evalctl'), args, {
      env: { ...process.env, EVALD_ADDR: this.address },
      encoding: 'utf8',
      timeout: 180000,
    });
    if (r.status !== 0 && !allowFail) {
      throw new Error(`evalctl ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
    }
    return r;
  }

  // Submits the arith task (tests/integration/data) against `modelUrl`; returns the id.
  submit(modelUrl, { samples = 10, parallelism = 4, name = 'run', wait = false } = {}) {
    const cfg = path.join(this.dir, `${name}.yaml`);
    fs.writeFileSync(cfg, [
      'defaults:', '  - execution: local', '  - deployment: none', '  - _self_',
      'execution:', `  output_dir: ${this.dir}/out`, '  mode: parallel',
      'target:', '  api_endpoint:', `    url: ${modelUrl}`, '    model_id: ref-model', '    api_key_name: null',
      'evaluation:', '  overrides:', `    config.params.limit_samples: ${samples}`,
      `    config.params.parallelism: ${parallelism}`, '  tasks:',
      '    - name: arith', `      task_file: ${DATA_DIR}/arith_task.yaml`, '',
    ].join('\n'));
    const r = this.ctl(['submit', cfg, '--json', ...(wait ? ['--wait'] : [])]);
    return JSON.parse(r.stdout).invocation_id;
  }

  async api(pathname, init) {
    const r = await fetch(`${this.base}${pathname}`, init);
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  token(user, role) {
    const r = this.ctl(['admin', 'tokens', 'create', '--user', user, '--role', role, '--json']);
    return JSON.parse(r.stdout).token;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await waitFor(() => this.child.exitCode !== null, 15000).catch(() => this.child.kill('SIGKILL'));
  }
}

// Chromium as the machine allows it (no network beyond loopback, root, no GPU), 1366x768.
export async function launch(playwright) {
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return browser;
}

// A page that records console errors and uncaught exceptions: the tests assert there are none.
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.consoleErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.consoleErrors.push(`${m.text()} @ ${JSON.stringify(m.location())}`);
  });
  page.on('pageerror', (e) => page.consoleErrors.push(`uncaught: ${e.message}`));
  return { context, page };
}

// Saves a screenshot into the ctest working dir (screenshots/, kept as CI artifacts) and, with
// EVALD_UPDATE_SCREENSHOTS=1, into docs/img/ for docs/dashboard.md.
export async function screenshot(page, name) {
  const dir = path.resolve('screenshots');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `dashboard-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  if (process.env.EVALD_UPDATE_SCREENSHOTS === '1') {
    fs.copyFileSync(file, path.join(SOURCE_DIR, 'docs/img', `dashboard-${name}.png`));
  }
  return file;
}
