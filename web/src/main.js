// The dashboard served at / by `sluice serve`: three views (Live, Explore, SQL) chosen by the
// URL's hash (#live, #explore, #sql?q=…), a light/dark theme that follows the system unless
// chosen, and the read key asked for by api.js when the server wants one.
import './styles.css';
import { forgetKey, readKey } from './api.js';
import { restyleCharts } from './charts.js';
import { ExploreView } from './explore.js';
import { LiveView } from './live.js';
import { SqlView } from './sql.js';

const THEMES = ['auto', 'light', 'dark'];
const THEME_STORAGE = 'sluice.theme';

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const b = document.getElementById('theme');
  b.textContent = `Theme: ${theme}`;
  b.title = theme === 'auto' ? 'Theme: follows the system. Click to change.' : `Theme: ${theme}. Click to change.`;
  restyleCharts();
}

function start() {
  applyTheme(localStorage.getItem(THEME_STORAGE) || 'auto');
  document.getElementById('theme').addEventListener('click', () => {
    const now = document.documentElement.dataset.theme;
    const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length];
    localStorage.setItem(THEME_STORAGE, next);
    applyTheme(next);
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (document.documentElement.dataset.theme === 'auto') restyleCharts();
  });

  const signout = document.getElementById('signout');
  signout.hidden = !readKey();
  signout.addEventListener('click', () => {
    forgetKey();
    location.reload();
  });

  // Views are made when first shown: the live view's polling starts only on #live.
  const makers = { live: () => new LiveView(), explore: () => new ExploreView(), sql: () => new SqlView() };
  const views = {};
  let current = null;

  function route() {
    const [name, query] = location.hash.slice(1).split('?');
    const id = makers[name] ? name : 'live';
    const params = new URLSearchParams(query || '');
    for (const key of Object.keys(makers)) {
      const active = key === id;
      document.getElementById(`view-${key}`).hidden = !active;
      const tab = document.getElementById(`tab-${key}`);
      tab.setAttribute('aria-selected', String(active));
      tab.tabIndex = active ? 0 : -1;
    }
    if (current && current !== id) views[current].hide();
    views[id] ||= makers[id]();
    current = id;
    views[id].show(params);
    document.title = `Sluice · ${document.getElementById(`tab-${id}`).textContent}`;
  }
  window.addEventListener('hashchange', route);

  // Arrow keys move between tabs (the ARIA tabs pattern); Alt+1..3 jump to a view.
  const tabs = [...document.querySelectorAll('[role=tab]')];
  document.querySelector('[role=tablist]').addEventListener('keydown', (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft')) return;
    e.preventDefault();
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    next.click();
  });
  document.addEventListener('keydown', (e) => {
    if (e.altKey && !e.ctrlKey && !e.metaKey && ['1', '2', '3'].includes(e.key)) {
      e.preventDefault();
      location.hash = ['#live', '#explore', '#sql'][Number(e.key) - 1];
    }
  });
  // A hidden tab stops polling; coming back resumes it at once.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && current) views[current].show(new URLSearchParams());
  });

  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
