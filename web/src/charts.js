// A thin layer over uPlot: charts that follow the theme and their box's size, and that
// expose what they draw (data-points, data-max, data-last on their element) for tests and
// for assistive text.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const PALETTE = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#ec4899', '#14b8a6', '#64748b'];

const charts = new Set();

// The colour a custom property resolves to now (the properties hold light-dark() pairs, which
// only a property that takes a colour resolves).
function cssColor(name) {
  const probe = document.createElement('span');
  probe.style.color = `var(${name})`;
  probe.hidden = true;
  document.body.append(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color;
}

// Rebuilds every chart (after the theme changed).
export function restyleCharts() {
  for (const c of charts) c.rebuild();
}

export class Chart {
  // kind: 'time' (x = Unix seconds), 'bars' (x = category index, labels in xLabels), or
  // 'line' (numeric x). series: [{label, color?, fmt?, scale?}] for the y columns; a series
  // with a `scale` of its own is drawn against a second axis on the right.
  constructor(el, { series, kind = 'time', xLabels = [], yFormat = (v) => v, stacked = false }) {
    this.el = el;
    this.opts = { series, kind, xLabels, yFormat, stacked };
    this.data = [[], ...series.map(() => [])];
    this.plot = null;
    charts.add(this);
    this.resize = new ResizeObserver(() => {
      if (this.plot && this.el.clientWidth > 0) this.plot.setSize(this.size());
    });
    this.resize.observe(el);
    this.rebuild();
  }

  size() {
    return {
      width: Math.max(200, this.el.clientWidth),
      height: this.el.classList.contains('tall') ? 300 : 200,
    };
  }

  rebuild() {
    if (this.plot) this.plot.destroy();
    const { series, kind, xLabels, yFormat } = this.opts;
    const axisColor = cssColor('--muted');
    const gridColor = cssColor('--grid');
    const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 } };
    const bars = kind === 'bars';
    const opts = {
      ...this.size(),
      scales: { x: bars ? { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } : { time: kind === 'time' } },
      axes: [
        bars ? { ...axis, values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? xLabels[i] ?? '' : '')), gap: 4, space: 40 } : { ...axis },
        { ...axis, values: (u, splits) => splits.map((v) => yFormat(v)), size: 60 },
        // A series with its own `scale` (other units) gets an axis on the right.
        ...series.filter((s) => s.scale).map((s) => ({
          ...axis, scale: s.scale, side: 1, grid: { show: false },
          values: (u, splits) => splits.map((v) => (s.fmt || yFormat)(v)), size: 60,
        })),
      ],
      legend: { live: true },
      cursor: { drag: { x: !bars, y: false } },
      series: [
        bars ? { label: 'x', value: (u, i) => (i == null ? '' : xLabels[i] ?? '') } : {},
        ...series.map((s, i) => {
          const color = s.color || PALETTE[i % PALETTE.length];
          const line = {
            label: s.label,
            scale: s.scale || 'y',
            stroke: color,
            width: 2,
            spanGaps: false,
            value: (u, v) => (v == null ? '–' : (s.fmt || yFormat)(v)),
          };
          if (!bars) return line;
          return { ...line, fill: `${color}cc`, paths: uPlot.paths.bars({ size: [0.7, 80] }), points: { show: false } };
        }),
      ],
    };
    this.plot = new uPlot(opts, this.data, this.el);
    this.describe();
  }

  setXLabels(labels) {
    this.opts.xLabels = labels;
  }

  setData(data) {
    this.data = data;
    if (this.plot) this.plot.setData(data);
    this.describe();
  }

  describe() {
    const ys = this.data.slice(1);
    let max = null;
    for (const col of ys) for (const v of col) if (v != null && Number.isFinite(v) && (max === null || v > max)) max = v;
    const first = ys[0] || [];
    let last = null;
    for (let i = first.length - 1; i >= 0; i--) {
      if (first[i] != null) {
        last = first[i];
        break;
      }
    }
    this.el.dataset.points = String(this.data[0].length);
    this.el.dataset.max = max === null ? '' : String(max);
    this.el.dataset.last = last === null ? '' : String(last);
  }

  destroy() {
    this.resize.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    charts.delete(this);
  }
}
