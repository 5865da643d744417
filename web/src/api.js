// Talking to the server: every call carries the read key (if one was given) and a 401 asks
// the user for one. The key lives in sessionStorage only: gone when the tab closes.
const KEY_STORAGE = 'sluice.readKey';

let keyPrompt = null; // the pending prompt, shared by concurrent 401s

export function readKey() {
  return sessionStorage.getItem(KEY_STORAGE) || '';
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

// Shows the key dialog; resolves once a key was entered.
function askForKey(message) {
  if (keyPrompt) return keyPrompt;
  const dialog = document.getElementById('key-dialog');
  const input = document.getElementById('key-input');
  const error = document.getElementById('key-error');
  error.hidden = !message;
  error.textContent = message || '';
  input.value = '';
  keyPrompt = new Promise((resolve) => {
    const form = document.getElementById('key-form');
    const onSubmit = (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (key.length < 8) {
        error.hidden = false;
        error.textContent = 'A key has at least 8 characters.';
        return;
      }
      sessionStorage.setItem(KEY_STORAGE, key);
      form.removeEventListener('submit', onSubmit);
      dialog.close();
      keyPrompt = null;
      document.getElementById('signout').hidden = false;
      resolve();
    };
    form.addEventListener('submit', onSubmit);
    // Esc must not leave the page without a key: the dialog reopens on the next call anyway.
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    dialog.showModal();
    input.focus();
  });
  return keyPrompt;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// fetch() with the key; JSON in and out. Throws ApiError with the server's sentence.
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    const key = readKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: 'no-store',
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, `cannot reach the server (${e.message})`);
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if ((res.status === 401 || res.status === 403) && attempt < 5) {
      const reason = json && json.error ? json.error : `HTTP ${res.status}`;
      forgetKey();
      await askForKey(key ? `The server refused that key: ${reason}` : '');
      continue;
    }
    if (!res.ok) {
      throw new ApiError(res.status, json && json.error ? json.error : `HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    return json;
  }
}

// POST /v1/query.
export function query(sql, engine = 'duckdb', signal) {
  return api('/v1/query', { method: 'POST', body: { sql, engine }, signal });
}

// A SQL string literal.
export function sqlString(s) {
  return `'${String(s).replaceAll("'", "''")}'`;
}

// A TIMESTAMPTZ literal for Unix seconds (the form the history cache can bound).
export function sqlTime(seconds) {
  return `TIMESTAMPTZ '${new Date(seconds * 1000).toISOString()}'`;
}
