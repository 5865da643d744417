// The live view: GET /v1/live once a second (only the samples the page lacks, `since=`), the
// headline figures, three charts over the last 15 minutes, the last exports and rejections.
import { api } from './api.js';
import { Chart } from './charts.js';
import { bytes, clock, fill, ms, num, row, seconds, utc } from './format.js';

const KPIS = [
  { id: 'accepted', label: 'Accepted events/s', get: (c) => c.accepted_per_s, fmt: (v) => num(v, 0) },
  { id: 'rejected', label: 'Rejected events/s', get: (c) => c.rejected_per_s + c.refused_per_s, fmt: (v) => num(v, 0), warn: (v) => v > 0,
    title: 'Rejected by validation plus refused (429/503/401)' },
  { id: 'p50', label: 'Ack latency p50', get: (c) => c.p50_ms, fmt: ms },
  { id: 'p99', label: 'Ack latency p99', get: (c) => c.p99_ms, fmt: ms },
  { id: 'backlog', label: 'Buffer backlog', get: (c) => c.backlog_events, fmt: (v) => `${num(v, 0)} events` },
  { id: 'lag', label: 'Loader lag', get: (c) => c.loader_lag_s, fmt: seconds, warn: (v) => v > 5,
    title: 'How far behind the newest acknowledged event the queryable data is' },
  { id: 'hot', label: 'Hot store', get: (c) => c.hot_store_bytes, fmt: bytes },
  { id: 'objects', label: 'Object store', get: (c) => c.object_store_bytes, fmt: bytes, sub: (c) => `${num(c.object_store_files, 0)} files` },
  { id: 'quarantined', label: 'Quarantined', get: (c) => c.quarantined_total, fmt: (v) => num(v, 0), sub: () => 'since start' },
];

export class LiveView {
  constructor() {
    this.active = false;
    this.timer = null;
    this.inflight = false;
    this.series = null; // columnar, as the server sends it
    this.historyS = 900;
    this.renderKpis();
    this.rate = new Chart(document.getElementById('chart-rate'), {
      series: [{ label: 'accepted/s', color: '#3b82f6' }, { label: 'rejected/s', color: '#ef4444' }, { label: 'refused/s', color: '#f59e0b' }],
      yFormat: (v) => num(v, 0),
    });
    this.latency = new Chart(document.getElementById('chart-latency'), {
      series: [{ label: 'p50', color: '#10b981' }, { label: 'p99', color: '#8b5cf6' }],
      yFormat: (v) => num(v, 1),
    });
    this.fresh = new Chart(document.getElementById('chart-fresh'), {
      series: [{ label: 'backlog (events)', color: '#64748b' }, { label: 'loader lag (s)', color: '#ec4899', scale: 'lag', fmt: (v) => `${num(v, 1)} s` }],
      yFormat: (v) => num(v, 1),
    });
  }

  renderKpis() {
    const box = document.getElementById('kpis');
    fill(box, KPIS, (k) => {
      const card = document.createElement('div');
      card.className = 'kpi';
      card.id = `kpi-${k.id}`;
      if (k.title) card.title = k.title;
      card.innerHTML = '<div class="label"></div><div class="value" aria-live="off">–</div><div class="sub muted"></div>';
      card.querySelector('.label').textContent = k.label;
      return card;
    });
  }

  show() {
    this.active = true;
    this.tick();
  }

  hide() {
    this.active = false;
    clearTimeout(this.timer);
  }

  schedule() {
    clearTimeout(this.timer);
    if (this.active && !document.hidden) this.timer = setTimeout(() => this.tick(), 1000);
  }

  async tick() {
    if (this.inflight) return;
    this.inflight = true;
    const conn = document.getElementById('conn');
    try {
      const since = this.series && this.series.t.length ? this.series.t[this.series.t.length - 1] : 0;
      const doc = await api(`/v1/live${since ? `?since=${since}` : ''}`);
      this.historyS = doc.history_s;
      this.merge(doc.series, doc.now);
      this.update(doc);
      conn.textContent = `live · ${clock(doc.now)}`;
      conn.classList.remove('bad');
    } catch (e) {
      conn.textContent = `disconnected: ${e.message}`;
      conn.classList.add('bad');
    } finally {
      this.inflight = false;
      this.schedule();
    }
  }

  merge(fresh, now) {
    if (!this.series) {
      this.series = fresh;
    } else {
      for (const k of Object.keys(fresh)) (this.series[k] ||= []).push(...fresh[k]);
    }
    // Keep the server's window: drop samples older than history_s.
    const t = this.series.t;
    let drop = 0;
    while (drop < t.length && t[drop] < now - this.historyS) drop++;
    if (drop) for (const k of Object.keys(this.series)) this.series[k].splice(0, drop);
  }

  update(doc) {
    const c = doc.current;
    for (const k of KPIS) {
      const card = document.getElementById(`kpi-${k.id}`);
      const v = k.get(c);
      card.querySelector('.value').textContent = k.fmt(v);
      card.dataset.value = v == null ? '' : String(v);
      card.classList.toggle('warn', Boolean(k.warn && v != null && k.warn(v)));
      if (k.sub) card.querySelector('.sub').textContent = k.sub(c);
    }
    const s = this.series;
    this.rate.setData([s.t, s.accepted, s.rejected, s.refused]);
    this.latency.setData([s.t, s.p50_ms, s.p99_ms]);
    this.fresh.setData([s.t, s.backlog, s.lag_s]);

    // The tables change rarely: rebuild them only when their rows did.
    const lists = JSON.stringify([doc.exports, doc.rejections, c.quarantined_total]);
    if (lists === this.lastLists) return;
    this.lastLists = lists;
    const exports = document.querySelector('#exports tbody');
    if (doc.exports.length === 0) {
      fill(exports, [null], () => row([{ text: 'No window exported by this process yet.', cls: 'muted' }, '', '', '']));
    } else {
      fill(exports, doc.exports, (e) => row([
        { text: `${utc(e.window_start)} – ${utc(e.window_end).slice(11)}`, title: e.key },
        { text: num(e.rows, 0), cls: 'num' },
        { text: bytes(e.bytes), cls: 'num' },
        { text: seconds(e.seconds), cls: 'num' },
      ]));
    }
    document.getElementById('quarantine-count').textContent =
      `· ${num(c.quarantined_total, 0)} since start${doc.rejections.length ? ', latest first' : ''}`;
    const rej = document.querySelector('#rejections tbody');
    if (doc.rejections.length === 0) {
      fill(rej, [null], () => row([{ text: 'Nothing quarantined since the server started.', cls: 'muted' }, '', '', '']));
    } else {
      fill(rej, doc.rejections, (r) => row([clock(r.at), r.source || '–', { text: r.reason, cls: 'code' }, r.error]));
    }
  }
}
