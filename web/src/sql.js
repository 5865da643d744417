// The SQL console: an editor with the schema beside it, Ctrl+Enter runs (POST /v1/query), a
// paged result table, one click to chart the result (a line over a time column, bars
// otherwise), the server's error as it said it, saved queries (this browser) and links that
// carry the query (#sql?q=…).
import { query } from './api.js';
import { Chart } from './charts.js';
import { chartPlan, toNumber } from './data.js';
import { fill, num, row } from './format.js';

const PAGE_ROWS = 50;
const SAVED_STORAGE = 'sluice.savedQueries';
const SCHEMA_SQL = `SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_name IN ('events', 'events_1m', 'events_rejected')
ORDER BY table_name, ordinal_position`;

function cellText(v) {
  if (v === null || v === undefined) return { text: 'NULL', cls: 'null' };
  if (typeof v === 'object') return { text: JSON.stringify(v), cls: 'code' };
  if (typeof v === 'number') return { text: String(v), cls: 'num' };
  return String(v);
}

export class SqlView {
  constructor() {
    this.editor = document.getElementById('sql');
    this.engine = document.getElementById('engine');
    this.status = document.getElementById('sql-status');
    this.error = document.getElementById('sql-error');
    this.result = null;
    this.page = 0;
    this.chart = null;
    this.schemaLoaded = false;
    this.running = null;
    this.escaped = false;

    this.editor.addEventListener('keydown', (e) => this.onKey(e));
    document.getElementById('run').addEventListener('click', () => this.run());
    document.getElementById('chart-result').addEventListener('click', () => this.drawChart());
    document.getElementById('prev').addEventListener('click', () => this.showPage(this.page - 1));
    document.getElementById('next').addEventListener('click', () => this.showPage(this.page + 1));
    document.getElementById('save').addEventListener('click', () => this.save());
    document.getElementById('saved').addEventListener('change', (e) => this.load(e.target.value));
    document.getElementById('delete-saved').addEventListener('click', () => this.deleteSaved());
    document.getElementById('share').addEventListener('click', () => this.share());
    this.renderSaved();
  }

  // params: URLSearchParams of the hash (#sql?q=…&engine=…).
  show(params) {
    if (!this.schemaLoaded) this.loadSchema();
    const q = params && params.get('q');
    if (q && q !== this.editor.value) {
      this.editor.value = q;
      if (params.get('engine')) this.engine.value = params.get('engine');
      this.run();
    }
    this.editor.focus();
  }

  hide() {}

  onKey(e) {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.run();
      return;
    }
    if (e.key === 'Escape') {
      this.escaped = true; // the next Tab moves focus instead of indenting
      return;
    }
    if (e.key === 'Tab' && !e.shiftKey && !this.escaped) {
      e.preventDefault();
      this.editor.setRangeText('  ', this.editor.selectionStart, this.editor.selectionEnd, 'end');
      return;
    }
    this.escaped = false;
  }

  async loadSchema() {
    const box = document.getElementById('schema');
    try {
      const r = await query(SCHEMA_SQL);
      this.schemaLoaded = true;
      const tables = new Map();
      for (const [t, c, type] of r.rows) {
        if (!tables.has(t)) tables.set(t, []);
        // A name in several attached catalogs is listed once.
        if (!tables.get(t).some(([name]) => name === c)) tables.get(t).push([c, type]);
      }
      fill(box, [...tables.entries()], ([t, cols]) => {
        const d = document.createElement('details');
        d.open = t === 'events';
        const s = document.createElement('summary');
        s.append(this.nameButton(t));
        d.append(s);
        const ul = document.createElement('ul');
        for (const [c, type] of cols) {
          const li = document.createElement('li');
          const ty = document.createElement('span');
          ty.className = 'muted type';
          ty.textContent = type;
          li.append(this.nameButton(c), ' ', ty);
          ul.append(li);
        }
        d.append(ul);
        return d;
      });
    } catch (e) {
      box.textContent = `Cannot read the schema: ${e.message}`;
    }
  }

  nameButton(name) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'link code';
    b.textContent = name;
    b.title = `Insert ${name}`;
    b.addEventListener('click', () => {
      this.editor.focus();
      this.editor.setRangeText(name, this.editor.selectionStart, this.editor.selectionEnd, 'end');
    });
    return b;
  }

  async run() {
    const sql = this.editor.value.trim();
    if (!sql) {
      this.showError('Write a query first, e.g. SELECT count(*) FROM events');
      return;
    }
    if (this.running) this.running.abort();
    const controller = new AbortController();
    this.running = controller;
    this.error.hidden = true;
    this.status.textContent = 'Running…';
    document.getElementById('run').disabled = true;
    const started = performance.now();
    try {
      const r = await query(sql, this.engine.value, controller.signal);
      const took = performance.now() - started;
      this.result = r;
      this.status.textContent = `${num(r.row_count ?? r.rows.length, 0)} rows · ${num(r.elapsed_ms, 1)} ms on the server, ${num(took, 0)} ms in all`;
      this.status.dataset.rows = String(r.rows.length);
      this.renderHead();
      this.showPage(0);
      const plan = chartPlan(r);
      const button = document.getElementById('chart-result');
      button.disabled = !plan;
      button.textContent = plan ? (plan.kind === 'time' ? 'Chart (line)' : 'Chart (bars)') : 'Chart';
      button.title = plan ? '' : 'No numeric column to chart';
      document.getElementById('result-chart-card').hidden = true;
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.result = null;
      this.status.textContent = `Failed after ${num(performance.now() - started, 0)} ms`;
      this.showError(e.status ? `${e.message} (HTTP ${e.status})` : e.message);
      document.querySelector('#result thead').replaceChildren();
      document.querySelector('#result tbody').replaceChildren();
      document.getElementById('pager').hidden = true;
      document.getElementById('chart-result').disabled = true;
      document.getElementById('result-chart-card').hidden = true;
    } finally {
      if (this.running === controller) this.running = null;
      document.getElementById('run').disabled = false;
    }
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }

  renderHead() {
    const tr = document.createElement('tr');
    this.result.columns.forEach((c, i) => {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = c;
      th.title = this.result.types ? this.result.types[i] : '';
      tr.append(th);
    });
    document.querySelector('#result thead').replaceChildren(tr);
  }

  showPage(page) {
    const rows = this.result ? this.result.rows : [];
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
    this.page = Math.min(Math.max(0, page), pages - 1);
    const slice = rows.slice(this.page * PAGE_ROWS, (this.page + 1) * PAGE_ROWS);
    fill(document.querySelector('#result tbody'), slice, (r) => row(r.map(cellText)));
    const pager = document.getElementById('pager');
    pager.hidden = pages <= 1;
    document.getElementById('page-info').textContent =
      `rows ${num(this.page * PAGE_ROWS + 1, 0)}–${num(this.page * PAGE_ROWS + slice.length, 0)} of ${num(rows.length, 0)}`;
    document.getElementById('prev').disabled = this.page === 0;
    document.getElementById('next').disabled = this.page >= pages - 1;
  }

  drawChart() {
    const r = this.result;
    const plan = r && chartPlan(r);
    if (!plan) return;
    const card = document.getElementById('result-chart-card');
    card.hidden = false;
    const el = document.getElementById('chart-result-plot');
    el.dataset.kind = plan.kind;
    if (this.chart) this.chart.destroy();
    let data;
    let labels = [];
    if (plan.kind === 'time') {
      const rows = r.rows
        .map((x) => [Date.parse(x[plan.x]) / 1000, ...plan.ys.map((i) => toNumber(x[i]))])
        .filter((x) => Number.isFinite(x[0]))
        .sort((a, b) => a[0] - b[0]);
      data = [rows.map((x) => x[0]), ...plan.ys.map((_, j) => rows.map((x) => x[j + 1]))];
    } else {
      const rows = r.rows.slice(0, 200);
      labels = rows.map((x, i) => (plan.x >= 0 ? String(x[plan.x] ?? 'NULL') : String(i + 1)));
      data = [rows.map((_, i) => i), ...plan.ys.map((i) => rows.map((x) => toNumber(x[i])))];
    }
    document.getElementById('result-chart-title').textContent = plan.kind === 'time'
      ? `${plan.ys.map((i) => r.columns[i]).join(', ')} over ${r.columns[plan.x]}`
      : `${plan.ys.map((i) => r.columns[i]).join(', ')} by ${plan.x >= 0 ? r.columns[plan.x] : 'row'}${r.rows.length > 200 ? ' (first 200 rows)' : ''}`;
    this.chart = new Chart(el, {
      kind: plan.kind,
      xLabels: labels,
      series: plan.ys.map((i) => ({ label: r.columns[i] })),
      yFormat: (v) => num(v, 1),
    });
    this.chart.setData(data);
    card.scrollIntoView({ block: 'nearest' });
  }

  savedQueries() {
    try {
      return JSON.parse(localStorage.getItem(SAVED_STORAGE) || '[]');
    } catch {
      return [];
    }
  }

  renderSaved() {
    const select = document.getElementById('saved');
    const saved = this.savedQueries();
    fill(select, [{ name: '' }, ...saved], (q) => {
      const o = document.createElement('option');
      o.value = q.name;
      o.textContent = q.name || (saved.length ? '—' : 'none yet');
      return o;
    });
    document.getElementById('delete-saved').disabled = true;
  }

  save() {
    const sql = this.editor.value.trim();
    if (!sql) return this.showError('Nothing to save: the editor is empty.');
    const name = (window.prompt('Save this query as:', document.getElementById('saved').value || '') || '').trim();
    if (!name) return;
    const saved = this.savedQueries().filter((q) => q.name !== name);
    saved.push({ name, sql, engine: this.engine.value });
    saved.sort((a, b) => a.name.localeCompare(b.name));
    localStorage.setItem(SAVED_STORAGE, JSON.stringify(saved));
    this.renderSaved();
    document.getElementById('saved').value = name;
    document.getElementById('delete-saved').disabled = false;
    this.status.textContent = `Saved as “${name}” in this browser.`;
  }

  load(name) {
    const q = this.savedQueries().find((x) => x.name === name);
    document.getElementById('delete-saved').disabled = !q;
    if (!q) return;
    this.editor.value = q.sql;
    this.engine.value = q.engine || 'duckdb';
    this.editor.focus();
  }

  deleteSaved() {
    const name = document.getElementById('saved').value;
    if (!name) return;
    localStorage.setItem(SAVED_STORAGE, JSON.stringify(this.savedQueries().filter((q) => q.name !== name)));
    this.renderSaved();
  }

  // A link that opens the console with this query and runs it.
  async share() {
    const params = new URLSearchParams({ q: this.editor.value });
    if (this.engine.value !== 'duckdb') params.set('engine', this.engine.value);
    const hash = `#sql?${params}`;
    history.replaceState(null, '', hash);
    const url = location.href;
    try {
      await navigator.clipboard.writeText(url);
      this.status.textContent = 'Link copied: it opens this query and runs it.';
    } catch {
      this.status.textContent = `Link (copy it): ${url}`;
    }
  }
}
