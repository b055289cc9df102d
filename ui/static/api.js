// The /v1 API client: every request carries the chosen datacenter (?dc=)
// and the token (X-Consul-Token); watch keeps a view live with blocking
// queries.

const TOKEN_KEY = 'beacon.ui.token';

// How long a blocking query waits for a change (the server adds jitter).
const BLOCKING_WAIT = '5m';
// A blocking query can return at once many times in a row in a busy
// cluster: never send the next one sooner than this after the last.
const MIN_INTERVAL_MS = 500;
// Endpoints without blocking queries (members, the Raft configuration)
// are read again this often.
const POLL_INTERVAL_MS = 5000;
// After an error, wait 1 s, 2 s, 4 s, … up to this before trying again.
const MAX_BACKOFF_MS = 30000;

export const settings = {
  dc: '',
  token: readToken(),
};

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return ''; // storage disabled: no token kept
  }
}

export function setToken(token) {
  settings.token = token;
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lasts for this page only
  }
}

// APIError is a failed request: status 0 when the agent could not be
// reached at all.
export class APIError extends Error {
  constructor(status, message, method, path) {
    super(message);
    this.status = status;
    this.method = method;
    this.path = path;
  }

  // describe says what failed in words for the page.
  describe() {
    const what = `${this.method} ${this.path}`;
    if (this.status === 0) return `${what}: the agent cannot be reached (${this.message})`;
    if (this.status === 403) {
      return `${what}: ${this.message || 'Permission denied'} (403). ` +
        (settings.token ? 'The token in use does not allow this.' : 'Set an ACL token above.');
    }
    return `${what}: ${this.message} (${this.status})`;
  }

  get noLeader() {
    return this.status === 500 && /no cluster leader/i.test(this.message);
  }
}

// Listeners told about the leader after every answer (the header banner).
const leaderListeners = new Set();
export function onLeaderStatus(fn) {
  leaderListeners.add(fn);
}
function reportLeader(known, dc) {
  for (const fn of leaderListeners) fn(known, dc);
}

// kvPath is the API path of a KV key, each segment escaped.
export function kvPath(key) {
  return '/v1/kv/' + key.split('/').map(encodeURIComponent).join('/');
}

// request sends one API call. params: query parameters (true sends a bare
// flag, undefined leaves one out). opts.allow404 returns {status: 404,
// data: null} instead of failing (KV reads block on a key's appearance);
// opts.local leaves out ?dc= (for what this agent answers itself).
// It resolves to {data, index, filtered, knownLeader, status}.
export async function request(path, { method = 'GET', params = {}, body, signal, allow404 = false, local = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === false) continue;
    url.searchParams.set(k, v === true ? '' : String(v));
  }
  if (settings.dc && !local) url.searchParams.set('dc', settings.dc);
  const headers = {};
  if (settings.token) headers['X-Consul-Token'] = settings.token;
  const dc = settings.dc;
  let resp;
  try {
    resp = await fetch(url, { method, headers, body, signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    if (signal && signal.aborted) throw e;
    throw new APIError(0, e.message || String(e), method, path);
  }
  const leaderHeader = resp.headers.get('X-Consul-KnownLeader');
  const knownLeader = leaderHeader === null ? null : leaderHeader === 'true';
  if (knownLeader !== null) reportLeader(knownLeader, dc);
  const index = Number(resp.headers.get('X-Consul-Index')) || 0;
  const filtered = resp.headers.get('X-Consul-Results-Filtered-By-ACLs') === 'true';
  if (resp.status === 404 && allow404) {
    await resp.body?.cancel();
    return { data: null, index, filtered, knownLeader, status: 404 };
  }
  if (!resp.ok) {
    const text = (await resp.text()).trim();
    const err = new APIError(resp.status, text || resp.statusText, method, path);
    if (err.noLeader) reportLeader(false, dc);
    throw err;
  }
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json() : await resp.text();
  return { data, index, filtered, knownLeader, status: resp.status };
}

// sleep resolves after ms, or at once when signal aborts.
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

// watch keeps one request to path open at a time for as long as signal
// lives: a blocking query (?index=&wait=) that returns when the data
// changes, or, for endpoints that do not block (no X-Consul-Index), a read
// every POLL_INTERVAL_MS. onData gets each new answer (not the same index
// again); onError gets each failure, after which it backs off; onRecover
// is called on the first success after a failure.
export function watch(path, { params = {}, signal, onData, onError, onRecover, allow404 = false, local = false }) {
  let index = 0;
  let failures = 0;
  (async () => {
    while (!signal.aborted) {
      const started = performance.now();
      let blocking = false;
      try {
        const p = { ...params };
        if (index > 0) {
          p.index = index;
          p.wait = BLOCKING_WAIT;
        }
        const r = await request(path, { params: p, signal, allow404, local });
        if (signal.aborted) return;
        if (failures > 0 && onRecover) onRecover();
        failures = 0;
        blocking = r.index > 0;
        // A new index, or the first answer, is news; the same index is a
        // blocking query that timed out. An index going backwards (a
        // snapshot restore) starts over, as Consul advises.
        const fresh = index === 0 || r.index !== index;
        index = r.index;
        if (fresh) onData(r);
      } catch (e) {
        if (signal.aborted) return;
        failures++;
        index = 0;
        const backoff = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (failures - 1));
        if (onError) onError(e, backoff);
        await sleep(backoff, signal);
        continue;
      }
      const wait = blocking ? MIN_INTERVAL_MS : POLL_INTERVAL_MS;
      const elapsed = performance.now() - started;
      if (elapsed < wait) await sleep(wait - elapsed, signal);
    }
  })();
}

// Fetch-many with a bound on requests in flight: the browser has six
// connections per host, and blocking queries hold some of them.
export async function mapLimited(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
