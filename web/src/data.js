// Pure data shaping for the views (no DOM), unit-tested by web/test/data.test.mjs.

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|REAL|DECIMAL.*|NUMERIC.*|int.*|float.*|numeric.*)$/i;
const TIME = /^(TIMESTAMP.*|DATE)$/i;
const STEP_S = { '1m': 60, '1h': 3600, '1d': 86400 };

// Events per event name in a /v1/stats answer, largest first: [[event, count], …].
export function rankEvents(stats) {
  const totals = new Map();
  for (const p of stats.series) totals.set(p.event, (totals.get(p.event) || 0) + p.count);
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

// A /v1/stats answer as uPlot columns: xs (every bucket of the range, Unix seconds), one
// column per event for the `maxSeries` largest, the rest summed into "other events".
// Returns {xs, labels, cols}; with no event, one column of zeros labelled "events".
export function pivotStats(stats, maxSeries) {
  const step = STEP_S[stats.interval];
  const from = Date.parse(stats.from) / 1000;
  const to = Date.parse(stats.to) / 1000;
  const xs = [];
  for (let t = Math.floor(from / step) * step; t < to; t += step) xs.push(t);
  const index = new Map(xs.map((t, i) => [t, i]));
  const ranked = rankEvents(stats).map(([e]) => e);
  const shown = ranked.slice(0, maxSeries);
  const other = ranked.length > maxSeries;
  const slot = new Map(shown.map((e, i) => [e, i]));
  const labels = [...shown.map((e) => e || '(no name)'), ...(other ? ['other events'] : [])];
  if (labels.length === 0) return { xs, labels: ['events'], cols: [xs.map(() => 0)] };
  const cols = labels.map(() => xs.map(() => 0));
  for (const p of stats.series) {
    const i = index.get(Date.parse(p.t) / 1000);
    if (i === undefined) continue;
    cols[slot.has(p.event) ? slot.get(p.event) : shown.length][i] += p.count;
  }
  return { xs, labels, cols };
}

// How a /v1/query result is charted: {kind:'time', x, ys} when a column is a time (a line per
// numeric column over it), else {kind:'bars', x, ys} (x: the first text column, or the first
// numeric one when all are numeric and there is another, or -1 for the row number); null
// when no column is numeric.
export function chartPlan(result) {
  const { columns, types = [], rows } = result;
  const isNum = (i) => NUMERIC.test(types[i] || '') ||
    (!types[i] && rows.length > 0 && rows.every((r) => r[i] === null || typeof r[i] === 'number'));
  const time = columns.findIndex((c, i) => TIME.test(types[i] || ''));
  const ys = columns.map((c, i) => i).filter((i) => i !== time && isNum(i));
  if (ys.length === 0) return null;
  if (time >= 0) return { kind: 'time', x: time, ys };
  const label = columns.findIndex((c, i) => !isNum(i));
  if (label >= 0) return { kind: 'bars', x: label, ys };
  if (ys.length > 1) return { kind: 'bars', x: ys[0], ys: ys.slice(1) };
  return { kind: 'bars', x: -1, ys };
}

// A cell as a number for a chart: numbers, numeric strings (integers beyond 2^53 come as
// strings); null for anything else.
export function toNumber(v) {
  if (v === null || v === undefined || v === '') return null;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : null;
}
