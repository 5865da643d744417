// The dashboard's cost in the browser, for bench/dashboard.sh: opens the page at URL in
// Debian's chromium (headless, driven by playwright-core) LOADS times in fresh contexts and
// records the navigation timing (load event, from the start of the navigation), then keeps
// the live view open for SECONDS and measures the CPU time of chromium's processes from
// /proc (renderer processes apart, the page's own; then every process of the browser).
// With SLUICE_SERVER_PID set, also the CPU of that process (the server) over the same window.
// Prints one JSON object.
//   node measure.mjs URL [SECONDS=60] [LOADS=5]
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(join(here, 'package.json'))('playwright-core');
const [url, seconds = '60', loads = '5'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node measure.mjs URL [SECONDS] [LOADS]');
  process.exit(2);
}
const CLK_TCK = 100; // USER_HZ on Linux

// {ppid, cpu seconds (user + system)} of one process, from /proc/PID/stat (the fields after
// the command name, which may hold spaces: ppid is the 4th, utime and stime the 14th and 15th).
function stat(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(rest[1]), cpu: (Number(rest[11]) + Number(rest[12])) / CLK_TCK };
}

// pid -> {ppid, cpu seconds (user + system), cmdline}
function processes() {
  const out = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
      out.set(Number(name), { ...stat(name), cmdline });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function descendants(root, procs) {
  const pids = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!pids.has(pid) && pids.has(p.ppid)) {
        pids.add(pid);
        grew = true;
      }
    }
  }
  return pids;
}

// CPU seconds of the processes below `root` (not root itself): chromium's, when root is this
// node process that launched it.
function cpuOf(root) {
  const procs = processes();
  let all = 0;
  let renderer = 0;
  for (const pid of descendants(root, procs)) {
    if (pid === root) continue;
    const p = procs.get(pid);
    if (!p) continue;
    all += p.cpu;
    if (p.cmdline.includes('--type=renderer')) renderer += p.cpu;
  }
  return { all, renderer };
}

// CPU seconds (user + system) of one process, or null without SLUICE_SERVER_PID.
function serverCpu() {
  const pid = process.env.SLUICE_SERVER_PID;
  return pid ? stat(pid).cpu : null;
}

const browser = await chromium.launch({
  executablePath: process.env.SLUICE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  chromiumSandbox: false,
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const loadMs = [];
  for (let i = 0; i < Number(loads); i++) {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'load' });
    loadMs.push(await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return nav.loadEventEnd - nav.startTime;
    }));
    await context.close();
  }

  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => /^live/.test(document.getElementById('conn').textContent), null, { timeout: 20000 });
  await page.waitForTimeout(3000); // past the first full fetch and chart build
  const root = process.pid;
  const before = cpuOf(root);
  const serverBefore = serverCpu();
  if (before.renderer === 0) throw new Error('found no chromium renderer below this process');
  const t0 = process.hrtime.bigint();
  const openFromMs = Date.now();
  const figures = [];
  const end = Date.now() + Number(seconds) * 1000;
  while (Date.now() < end) {
    await page.waitForTimeout(5000);
    figures.push(Number(await page.locator('#kpi-accepted').getAttribute('data-value')));
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = cpuOf(root);
  const serverAfter = serverCpu();
  const sorted = [...loadMs].sort((a, b) => a - b);
  console.log(JSON.stringify({
    load_ms: loadMs.map((v) => Math.round(v)),
    load_ms_median: Math.round(sorted[Math.floor(sorted.length / 2)]),
    load_ms_max: Math.round(sorted[sorted.length - 1]),
    open_seconds: Math.round(wall * 10) / 10,
    renderer_cpu_percent: Math.round((1000 * (after.renderer - before.renderer)) / wall) / 10,
    browser_cpu_percent: Math.round((1000 * (after.all - before.all)) / wall) / 10,
    server_cpu_percent: serverBefore === null ? null : Math.round((1000 * (serverAfter - serverBefore)) / wall) / 10,
    accepted_per_s_shown: figures,
    open_from_ms: openFromMs, // wall clock (ms since the epoch) of the measured open window
    open_to_ms: Date.now(),
  }));
} finally {
  await browser.close();
}
