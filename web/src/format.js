// Numbers, sizes, times and durations for people.
const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function num(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return digits === 0 ? nf0.format(v) : nf.format(v);
}

export function bytes(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;
}

export function seconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v < 1) return `${Math.round(v * 1000)} ms`;
  if (v < 120) return `${v.toFixed(1)} s`;
  return `${(v / 60).toFixed(1)} min`;
}

// "2026-11-24 12:10:00" (UTC) from Unix seconds.
export function utc(s) {
  return new Date(s * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

// "12:10:05" local time from Unix seconds.
export function clock(s) {
  return new Date(s * 1000).toLocaleTimeString();
}

// Clears `el` and adds one child per item.
export function fill(el, items, render) {
  el.replaceChildren(...items.map(render));
}

// <tr> with cells; a cell is text, or {text, cls}.
export function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c && typeof c === 'object') {
      td.textContent = c.text;
      if (c.cls) td.className = c.cls;
      if (c.title) td.title = c.title;
    } else {
      td.textContent = c;
    }
    tr.append(td);
  }
  return tr;
}
