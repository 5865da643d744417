// Unit tests of the views' data shaping (src/data.js): node --test web/test/ (ctest web_data_test).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chartPlan, pivotStats, rankEvents, toNumber } from '../src/data.js';

const stats = {
  interval: '1m',
  from: '2026-11-24T12:00:30Z',
  to: '2026-11-24T12:03:00Z',
  series: [
    { t: '2026-11-24T12:00:00Z', event: 'A', count: 5 },
    { t: '2026-11-24T12:00:00Z', event: 'B', count: 1 },
    { t: '2026-11-24T12:01:00Z', event: 'C', count: 2 },
    { t: '2026-11-24T12:02:00Z', event: '', count: 3 },
    { t: '2026-11-24T12:02:00Z', event: 'A', count: 1 },
  ],
  total: 12,
};

test('rankEvents sums per event, largest first, ties by name', () => {
  assert.deepEqual(rankEvents(stats), [['A', 6], ['', 3], ['C', 2], ['B', 1]]);
});

test('pivotStats makes a column per event over every bucket, the rest as other', () => {
  const t0 = Date.parse('2026-11-24T12:00:00Z') / 1000;
  const { xs, labels, cols } = pivotStats(stats, 2);
  assert.deepEqual(xs, [t0, t0 + 60, t0 + 120]); // the first bucket holds `from`
  assert.deepEqual(labels, ['A', '(no name)', 'other events']);
  assert.deepEqual(cols, [[5, 0, 1], [0, 0, 3], [1, 2, 0]]);
  const empty = pivotStats({ ...stats, series: [] }, 8);
  assert.deepEqual(empty.labels, ['events']);
  assert.deepEqual(empty.cols, [[0, 0, 0]]);
});

test('chartPlan: a line over a time column, bars by a text column, null without numbers', () => {
  const rows = [['2026-11-24T12:00:00Z', 'x', 3, 1.5]];
  const types = ['TIMESTAMP WITH TIME ZONE', 'VARCHAR', 'BIGINT', 'DOUBLE'];
  assert.deepEqual(chartPlan({ columns: ['t', 'e', 'n', 'f'], types, rows }), { kind: 'time', x: 0, ys: [2, 3] });
  assert.deepEqual(chartPlan({ columns: ['e', 'n'], types: ['VARCHAR', 'BIGINT'], rows: [['a', 1]] }),
    { kind: 'bars', x: 0, ys: [1] });
  assert.deepEqual(chartPlan({ columns: ['y', 'n'], types: ['INTEGER', 'BIGINT'], rows: [[2026, 1]] }),
    { kind: 'bars', x: 0, ys: [1] });
  assert.deepEqual(chartPlan({ columns: ['n'], types: ['BIGINT'], rows: [[1]] }), { kind: 'bars', x: -1, ys: [0] });
  assert.equal(chartPlan({ columns: ['e'], types: ['VARCHAR'], rows: [['a']] }), null);
  // PostgreSQL's own type names, and no types at all (values decide).
  assert.deepEqual(chartPlan({ columns: ['d', 'n'], types: ['DATE', 'numeric'], rows: [['2026-11-24', '3']] }),
    { kind: 'time', x: 0, ys: [1] });
  assert.deepEqual(chartPlan({ columns: ['e', 'n'], rows: [['a', 1], ['b', null]] }), { kind: 'bars', x: 0, ys: [1] });
});

test('toNumber takes numbers and numeric strings only', () => {
  assert.equal(toNumber(3), 3);
  assert.equal(toNumber('9007199254740993'), 9007199254740992);
  assert.equal(toNumber(''), null);
  assert.equal(toNumber('abc'), null);
  assert.equal(toNumber(null), null);
  assert.equal(toNumber(Infinity), null);
});
