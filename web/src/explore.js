// Explore: counts over time per event from GET /v1/stats (the rollups), with a time range and
// an event filter; top events from the same answer; top properties of one event by SQL.
import { api, query, sqlString, sqlTime } from './api.js';
import { Chart } from './charts.js';
import { pivotStats, rankEvents } from './data.js';
import { fill, num, row } from './format.js';

const MAX_SERIES = 8; // more events than this are summed into "other"

function localInputValue(seconds) {
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export class ExploreView {
  constructor() {
    this.chart = null;
    this.selected = ''; // event whose properties are listed
    this.form = document.getElementById('explore-form');
    this.range = document.getElementById('range');
    this.filter = document.getElementById('event-filter');
    this.status = document.getElementById('explore-status');
    this.range.addEventListener('change', () => {
      const custom = this.range.value === 'custom';
      document.getElementById('custom-range').hidden = !custom;
      if (custom) {
        const now = Date.now() / 1000;
        const from = document.getElementById('from');
        const to = document.getElementById('to');
        if (!from.value) from.value = localInputValue(now - 3600);
        if (!to.value) to.value = localInputValue(now);
        from.focus();
      } else {
        this.refresh();
      }
    });
    this.filter.addEventListener('change', () => {
      this.selected = this.filter.value;
      this.refresh();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.refresh();
    });
  }

  // [from, to) in Unix seconds, or an error sentence.
  span() {
    const now = Math.floor(Date.now() / 1000);
    if (this.range.value !== 'custom') return { from: now - Number(this.range.value), to: now };
    const from = Date.parse(document.getElementById('from').value) / 1000;
    const to = Date.parse(document.getElementById('to').value) / 1000;
    if (!Number.isFinite(from) || !Number.isFinite(to)) return { error: 'Enter both a start and an end time.' };
    if (from >= to) return { error: 'The start must be before the end.' };
    return { from, to };
  }

  show() {
    this.refresh();
  }

  hide() {}

  async refresh() {
    const span = this.span();
    if (span.error) {
      this.status.textContent = span.error;
      this.status.classList.add('bad');
      return;
    }
    this.status.classList.remove('bad');
    this.status.textContent = 'Loading…';
    const params = new URLSearchParams({ from: String(span.from), to: String(span.to) });
    if (this.filter.value) params.set('event', this.filter.value);
    try {
      const [stats, all] = await Promise.all([
        api(`/v1/stats?${params}`),
        // The top events list ignores the filter, so one can switch between events.
        this.filter.value ? api(`/v1/stats?${new URLSearchParams({ from: String(span.from), to: String(span.to) })}`) : null,
      ]);
      this.draw(stats);
      this.topEvents(all || stats);
      this.status.textContent = `${num(stats.total, 0)} events`;
      document.getElementById('explore-interval').textContent = `(per ${{ '1m': 'minute', '1h': 'hour', '1d': 'day' }[stats.interval]})`;
    } catch (e) {
      this.status.textContent = e.message;
      this.status.classList.add('bad');
      return;
    }
    this.topProperties(span);
  }

  draw(stats) {
    const { xs, labels, cols } = pivotStats(stats, MAX_SERIES);
    if (this.chart) this.chart.destroy();
    this.chart = new Chart(document.getElementById('chart-explore'), {
      series: labels.map((label) => ({ label })),
      yFormat: (v) => num(v, 0),
    });
    this.chart.setData([xs, ...cols]);
  }

  topEvents(stats) {
    const ranked = rankEvents(stats);
    // Keep the filter's choices in step with what exists in the range.
    const current = this.filter.value;
    const names = ranked.map(([e]) => e).filter((e) => e);
    if (current && !names.includes(current)) names.unshift(current);
    fill(this.filter, ['', ...names], (e) => {
      const o = document.createElement('option');
      o.value = e;
      o.textContent = e || 'All events';
      return o;
    });
    this.filter.value = current;
    const body = document.querySelector('#top-events tbody');
    if (ranked.length === 0) {
      fill(body, [null], () => row([{ text: 'No events in this range.', cls: 'muted' }, '', '']));
      return;
    }
    fill(body, ranked.slice(0, 20), ([event, count]) => {
      const tr = row(['', { text: num(count, 0), cls: 'num' }, { text: `${((100 * count) / stats.total).toFixed(1)} %`, cls: 'num' }]);
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = event || '(no name)';
      b.title = 'Show this event\'s properties';
      b.addEventListener('click', () => {
        this.selected = event;
        this.topProperties(this.span());
      });
      tr.firstChild.append(b);
      return tr;
    });
  }

  async topProperties(span) {
    const hint = document.getElementById('top-props-hint');
    const table = document.getElementById('top-props');
    document.getElementById('top-props-event').textContent = this.selected ? `of “${this.selected}”` : '';
    if (!this.selected || span.error) {
      hint.hidden = false;
      table.hidden = true;
      return;
    }
    hint.hidden = false;
    hint.textContent = 'Loading…';
    const sql = `WITH e AS (
  SELECT properties FROM events
  WHERE event = ${sqlString(this.selected)}
    AND received_at >= ${sqlTime(span.from)} AND received_at < ${sqlTime(span.to)}
), p AS (SELECT unnest(json_keys(properties)) AS property, properties FROM e)
SELECT property, count(*) AS events,
       approx_count_distinct(json_extract_string(properties, property)) AS distinct_values,
       mode(json_extract_string(properties, property)) AS most_common
FROM p GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20`;
    try {
      const r = await query(sql);
      hint.hidden = r.rows.length > 0;
      hint.textContent = 'No properties on this event in this range.';
      table.hidden = r.rows.length === 0;
      fill(table.querySelector('tbody'), r.rows, (x) => row([
        { text: x[0], cls: 'code' },
        { text: num(x[1], 0), cls: 'num' },
        { text: num(x[2], 0), cls: 'num' },
        x[3] == null ? '–' : String(x[3]),
      ]));
    } catch (e) {
      hint.hidden = false;
      hint.textContent = e.message;
      table.hidden = true;
    }
  }
}
