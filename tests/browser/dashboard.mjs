// The dashboard in a real browser: playwright-core drives Debian's chromium (headless) against
// the real `sluice serve` (temp data dir, a free port, write and read keys), with events sent
// by `sluice bench`. Checks what a person would: the page loads in under a second and asks
// for a read key (a write key is refused), the live events/s figure and chart rise under
// load and a rejected event shows in the quarantine list, a SQL query shows exactly the rows
// sent, a time series charts as a line, a bad query shows the sandbox's own sentence, a shared
// link runs its query, Explore counts and lists the events; a screenshot of each view goes to
// $SLUICE_SCREENSHOTS (build/screenshots).
//
// Run by ctest (tests/integration/CMakeLists.txt: dashboard_browser_test) with SLUICE_BINARY
// and SLUICE_SCREENSHOTS set. Without chromium or playwright-core it skips (exit 77), unless
// SLUICE_REQUIRE_BROWSER=1 (scripts/test.sh sets it), when it fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
const SLUICE = process.env.SLUICE_BINARY || join(here, '../../build/sluice');
const SHOTS = process.env.SLUICE_SCREENSHOTS || join(here, '../../build/screenshots');
const WRITE_KEY = 'write-secret-dashboard';
const READ_KEY = 'read-secret-dashboard';
const required = process.env.SLUICE_REQUIRE_BROWSER === '1';

function skipOrFail(why) {
  if (required) {
    console.error(`dashboard_browser_test: ${why} (SLUICE_REQUIRE_BROWSER=1: failing, not skipping)`);
    process.exit(1);
  }
  console.log(`dashboard_browser_test: skipped: ${why}`);
  process.exit(77);
}

let chromium;
try {
  ({ chromium } = createRequire(join(here, 'package.json'))('playwright-core'));
} catch {
  skipOrFail('playwright-core is not installed (npm ci --prefix tests/browser)');
}
if (!existsSync(CHROMIUM)) skipOrFail(`no chromium at ${CHROMIUM} (apt-get install chromium)`);
if (!existsSync(SLUICE)) skipOrFail(`no sluice binary at ${SLUICE}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value; throws with `what` after `timeoutMs`.
async function until(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(200);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'sluice-dashboard-'));
let server;
let base;
let browser;
let page;
const pageErrors = [];

function serverLog() {
  try {
    return readFileSync(join(tmp, 'serve.log'), 'utf8').split('\n').slice(-40).join('\n');
  } catch {
    return '';
  }
}

// POST/GET the server as a client would, with a key.
async function http(path, { key = READ_KEY, body, method = body ? 'POST' : 'GET' } = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

// Runs `sluice bench`; resolves with its JSON report.
function bench(args) {
  return new Promise((resolve, reject) => {
    const out = join(tmp, `bench-${Date.now()}.json`);
    const p = spawn(SLUICE, ['bench', '--url', base, '--write-key', WRITE_KEY, '--out', out, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`sluice bench exited ${code}: ${err}`));
      resolve(JSON.parse(readFileSync(out, 'utf8')));
    });
  });
}

async function shot(name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

// Types `sql` into the console's editor and runs it with Ctrl+Enter.
async function runSql(sql) {
  const editor = page.locator('#sql');
  await page.locator('#sql-status').evaluate((el) => { el.textContent = ''; });
  await editor.fill(sql);
  await editor.press('Control+Enter');
  await until(`query "${sql}" to finish`, async () => {
    const status = await page.locator('#sql-status').textContent();
    return !/Running/.test(status) && status.length > 0;
  });
}

async function resultRows() {
  return page.locator('#result tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.textContent)));
}

before(async () => {
  const log = openSync(join(tmp, 'serve.log'), 'w');
  server = spawn(SLUICE, ['serve', '--listen', '127.0.0.1:0', '--data-dir', join(tmp, 'data'),
    '--write-key', `web:${WRITE_KEY}`, '--read-key', `analyst:${READ_KEY}`, '--threads', '2'], {
    stdio: ['ignore', log, log],
  });
  const addrFile = join(tmp, 'data', 'serve.addr');
  const addr = await until('sluice serve to write serve.addr', () => {
    if (server.exitCode !== null) throw new Error(`sluice serve exited ${server.exitCode}: ${serverLog()}`);
    return existsSync(addrFile) && readFileSync(addrFile, 'utf8').trim();
  });
  base = `http://${addr}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  page = await context.newPage();
  page.on('pageerror', (e) => {
    console.error(`page error: ${e.message}`);
    pageErrors.push(e.message);
  });
});

after(async () => {
  if (browser) await browser.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await until('sluice serve to stop', () => server.exitCode !== null, 30000).catch(() => server.kill('SIGKILL'));
  }
  rmSync(tmp, { recursive: true, force: true });
});

// The 1 s load target is measured by bench/dashboard.sh (`make bench-dashboard`, 5 loads under
// the seed load); here a load of 3 s or more fails as a gross regression without making the
// test depend on how busy the machine is.
test('the page loads and asks for a read key', async () => {
  await page.goto(base + '/', { waitUntil: 'load' });
  const loadMs = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    return nav.loadEventEnd - nav.startTime;
  });
  console.log(`page load: ${loadMs.toFixed(0)} ms`);
  assert.ok(loadMs > 0 && loadMs < 3000, `page load took ${loadMs} ms`);

  const dialog = page.locator('#key-dialog');
  await until('the key dialog', () => dialog.evaluate((d) => d.open));
  // A write key cannot read: the server says so and the dialog asks again.
  await page.locator('#key-input').fill(WRITE_KEY);
  await page.locator('#key-input').press('Enter');
  await until('the refusal of a write key', async () =>
    /a write key cannot read/.test(await page.locator('#key-error').textContent()));
  assert.equal(await dialog.evaluate((d) => d.open), true);
  await page.locator('#key-input').fill(READ_KEY);
  await page.locator('#key-input').press('Enter');
  await until('the live view to connect', async () => /^live/.test(await page.locator('#conn').textContent()));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('sluice.readKey')), READ_KEY);
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage).includes('secret')), false,
    'the key must not be in localStorage');
});

test('live: events/s and its chart rise under load; a rejected event is listed', async () => {
  const kpi = page.locator('#kpi-accepted');
  // The first sample is shown (not the empty placeholder) and has no load in it yet.
  const idle = await until('the first events/s figure', async () => {
    const v = await kpi.getAttribute('data-value');
    return v !== null && v !== '' ? v : null;
  });
  assert.equal(Number(idle), 0);
  const load = bench(['--rate', '3000', '--duration', '8', '--batch', '50', '--connections', '4']);
  const figure = await until('the events/s figure to rise', async () => {
    const v = Number(await kpi.getAttribute('data-value'));
    return v > 500 ? v : 0;
  });
  const chartMax = await until('the events/s chart to rise', async () => {
    const v = Number(await page.locator('#chart-rate').getAttribute('data-max'));
    return v > 500 ? v : 0;
  });
  console.log(`live: ${figure} events/s shown, chart max ${chartMax}`);
  assert.ok(await page.locator('#chart-rate canvas').count() > 0);
  const bad = await http('/v1/track', { key: WRITE_KEY, body: { event: 'No User' } });
  assert.equal(bad.status, 400);
  await until('the rejection in the quarantine list', async () =>
    /missing_user/.test(await page.locator('#rejections tbody').textContent()));
  const p99 = await until('the ack p99 figure', async () => {
    const v = Number(await page.locator('#kpi-p99').getAttribute('data-value'));
    return v > 0 ? v : 0;
  });
  console.log(`live: ack p99 shown ${p99} ms`);
  await shot('live');
  const report = await load;
  assert.ok(report.events_acked > 5000, `bench acked ${report.events_acked} events`);
  // The live totals count every event the server acknowledged (bench's, and none lost).
  const live = await until('the live totals to include the load', async () => {
    const r = await http('/v1/live');
    return r.json.current.accepted_total >= report.events_acked ? r.json : null;
  });
  assert.equal(live.current.quarantined_total, 1);
});

test('sql: a query shows exactly the rows sent', async () => {
  const sent = [['u1', 'pro'], ['u2', 'free'], ['u3', 'pro']];
  const r = await http('/v1/batch', {
    key: WRITE_KEY,
    body: { batch: sent.map(([u, plan]) => ({ type: 'track', userId: u, event: 'Dashboard Test', properties: { plan } })) },
  });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await until('the events to be queryable', async () => {
    const q = await http('/v1/query', { body: { sql: "SELECT count(*) FROM events WHERE event = 'Dashboard Test'" } });
    return q.status === 200 && q.json.rows[0][0] === 3;
  });
  await page.goto(base + '/#sql');
  await until('the schema', async () => /received_at/.test(await page.locator('#schema').textContent()));
  await runSql("SELECT user_id, properties->>'plan' AS plan FROM events WHERE event = 'Dashboard Test' ORDER BY user_id");
  assert.deepEqual(await resultRows(), sent);
  assert.match(await page.locator('#sql-status').textContent(), /3 rows · [\d.,]+ ms on the server/);
  assert.equal(await page.locator('#sql-error').isHidden(), true);
});

test('sql: a time series charts as a line', async () => {
  await runSql("SELECT date_trunc('second', received_at) AS t, count(*) AS events FROM events GROUP BY 1 ORDER BY 1");
  const rows = await resultRows();
  assert.ok(rows.length > 1, `${rows.length} seconds with events`);
  const button = page.locator('#chart-result');
  assert.equal(await button.textContent(), 'Chart (line)');
  await button.click();
  const plot = page.locator('#chart-result-plot');
  assert.equal(await plot.getAttribute('data-kind'), 'time');
  assert.equal(Number(await plot.getAttribute('data-points')), rows.length);
  assert.ok(Number(await plot.getAttribute('data-max')) > 0);
  assert.ok(await plot.locator('canvas').count() > 0);
  await shot('console');
  // A result without a time column charts as bars.
  await runSql('SELECT event, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC');
  assert.equal(await button.textContent(), 'Chart (bars)');
});

test("sql: a bad query shows the sandbox's error", async () => {
  const sql = "SELECT * FROM read_csv('/etc/passwd')";
  const direct = await http('/v1/query', { body: { sql } });
  assert.equal(direct.status, 400);
  await runSql(sql);
  const error = page.locator('#sql-error');
  assert.equal(await error.isVisible(), true);
  const text = await error.textContent();
  assert.ok(text.includes(direct.json.error), `shown: ${text}; server: ${direct.json.error}`);
  assert.match(text, /HTTP 400/);
  assert.equal(await page.locator('#result tbody tr').count(), 0);
  await shot('console-error');
  await runSql('SELEC 1');
  assert.match(await error.textContent(), /syntax error/i);
});

test('sql: a long result is paged; a saved query comes back after a reload', async () => {
  await runSql('SELECT range AS n FROM range(120)');
  assert.match(await page.locator('#sql-status').textContent(), /^120 rows/);
  assert.equal(await page.locator('#pager').isVisible(), true);
  assert.equal(await page.locator('#page-info').textContent(), 'rows 1–50 of 120');
  assert.equal((await resultRows()).length, 50);
  await page.locator('#next').click();
  await page.locator('#next').click();
  assert.equal(await page.locator('#page-info').textContent(), 'rows 101–120 of 120');
  assert.deepEqual((await resultRows()).map((r) => r[0]).slice(0, 2), ['100', '101']);
  assert.equal(await page.locator('#next').isDisabled(), true);

  // Save (the name comes from a prompt), reload, pick it from the list: the editor has it.
  page.once('dialog', (d) => d.accept('first hundred and twenty'));
  await page.locator('#save').click();
  await until('the saved message', async () =>
    /Saved as “first hundred and twenty”/.test(await page.locator('#sql-status').textContent()));
  await page.reload();
  await page.locator('#sql').fill('');
  await page.locator('#saved').selectOption('first hundred and twenty');
  assert.equal(await page.locator('#sql').inputValue(), 'SELECT range AS n FROM range(120)');
  await page.locator('#delete-saved').click();
  assert.deepEqual(await page.locator('#saved option').evaluateAll((os) => os.map((o) => o.value)), ['']);
});

test('sql: a shared link opens and runs its query', async () => {
  await page.goto(`${base}/#sql?${new URLSearchParams({ q: 'SELECT 40 + 2 AS answer' })}`);
  await until('the shared query to run', async () => {
    const rows = await resultRows();
    return rows.length === 1 && rows[0][0] === '42';
  });
});

test('explore: counts over time and top events and properties', async () => {
  await page.goto(base + '/#explore');
  await until('top events', async () => /Dashboard Test/.test(await page.locator('#top-events tbody').textContent()));
  const plot = page.locator('#chart-explore');
  assert.ok(Number(await plot.getAttribute('data-max')) > 0);
  await page.locator('#event-filter').selectOption('Dashboard Test');
  await until('the filtered total', async () => /^3 events/.test(await page.locator('#explore-status').textContent()));
  await until('the top properties', async () => /plan/.test(await page.locator('#top-props tbody').textContent()));
  const props = await page.locator('#top-props tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(props[0].slice(0, 4), ['plan', '3', '2', 'pro']);
  await shot('explore');
  // A custom range that ends before it starts is refused with a sentence.
  await page.locator('#range').selectOption('custom');
  await page.locator('#from').fill('2026-01-02T00:00');
  await page.locator('#to').fill('2026-01-01T00:00');
  await page.locator('#explore-form button[type=submit]').click();
  assert.match(await page.locator('#explore-status').textContent(), /start must be before the end/);
});

test('keyboard and theme: Alt+1 goes live, the dark theme applies', async () => {
  await page.keyboard.press('Alt+1');
  await until('the live view', async () => page.locator('#view-live').isVisible());
  await page.locator('#theme').click(); // auto -> light
  await page.locator('#theme').click(); // light -> dark
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, 'rgb(15, 18, 22)');
  await shot('live-dark');
});

test('the page raised no script error', () => {
  assert.deepEqual(pageErrors, []);
});
