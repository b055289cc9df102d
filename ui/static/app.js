// beacon's web UI: a hash router over a few views, each kept live by
// blocking queries against the public /v1 API.

import { h, fill } from './dom.js';
import { settings, setToken, request, watch, onLeaderStatus } from './api.js';
import { servicesView, serviceView } from './services.js';
import { nodesView, nodeView } from './nodes.js';
import { kvView } from './kv.js';
import { sessionsView, membersView, raftView } from './cluster.js';

const VIEWS = [
  { name: 'services', title: 'Services', list: servicesView, item: serviceView },
  { name: 'nodes', title: 'Nodes', list: nodesView, item: nodeView },
  { name: 'kv', title: 'Key/Value', list: kvView, item: kvView },
  { name: 'sessions', title: 'Sessions & locks', list: sessionsView },
  { name: 'members', title: 'Members', list: membersView },
  { name: 'raft', title: 'Raft peers', list: raftView },
];

const main = document.getElementById('view');
const nav = document.getElementById('nav');
const dcSelect = document.getElementById('dc');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token');
const leaderBanner = document.getElementById('leader-banner');
const errorBanner = document.getElementById('error-banner');

let datacenters = [];
let current = null; // the mounted view: {controller, route}

// route reads the hash: #/<dc>/<view>/<rest…>, rest's segments still
// escaped (the views decode them: a KV path keeps its slashes).
function parseRoute(hash) {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const dc = decodeURIComponent(parts[0] || '');
  const view = parts[1] || '';
  return { dc, view, rest: parts.slice(2) };
}

// href builds a route; rest segments are escaped here.
function href(view, ...rest) {
  return '#/' + [settings.dc, view, ...rest].map(encodeURIComponent).join('/');
}

// Errors shown in the banner, by source, for the mounted view.
const errors = new Map();
function showErrors() {
  const msgs = [...errors.values()];
  errorBanner.hidden = msgs.length === 0;
  fill(errorBanner, msgs.map((m) => h('div', { class: 'error-line' }, m)));
}

// viewContext is what a view gets: where to render, its route, a signal
// aborted when it is left, and helpers that tie its watches and errors to
// that lifetime.
function viewContext(route, signal) {
  const ctx = {
    main, route, signal, href,
    dc: route.dc,
    setError(key, message) {
      if (signal.aborted) return;
      errors.set(key, message);
      showErrors();
    },
    clearError(key) {
      if (signal.aborted || !errors.delete(key)) return;
      showErrors();
    },
    // watch keeps path live for this view (or for own, a signal of a part
    // of it); errors go to the banner with the retry delay, and clear once
    // it answers again.
    watch(path, { params, allow404, onData, signal: own }) {
      watch(path, {
        params, allow404, signal: own || signal,
        onData(r) {
          ctx.clearError(path);
          onData(r);
        },
        onError(e, backoff) {
          const text = e.describe ? e.describe() : String(e);
          ctx.setError(path, `${text} — retrying in ${Math.round(backoff / 1000)} s`);
        },
      });
    },
    // request is one call made by the view (a save, a delete), aborted
    // when the view is left.
    request(path, opts = {}) {
      return request(path, { signal, ...opts });
    },
    // schedule coalesces renders asked for by several answers arriving
    // together into one.
    schedule(render) {
      if (render.pending) return;
      render.pending = true;
      setTimeout(() => {
        render.pending = false;
        if (!signal.aborted) render();
      }, 0);
    },
  };
  return ctx;
}

function renderNav(route) {
  fill(nav, VIEWS.map((v) => h('a', {
    href: '#/' + encodeURIComponent(settings.dc) + '/' + v.name,
    class: v.name === route.view ? 'active' : null,
    id: `nav-${v.name}`,
  }, v.title)));
  document.getElementById('brand').setAttribute('href', '#/' + encodeURIComponent(settings.dc) + '/services');
}

function renderDatacenters() {
  const list = datacenters.includes(settings.dc) || !settings.dc ? datacenters : [...datacenters, settings.dc];
  fill(dcSelect, list.map((dc) => h('option', { value: dc }, dc)));
  dcSelect.value = settings.dc;
}

// mount shows the view the hash names, leaving the one before (its
// watches end with its signal).
function mount() {
  const route = parseRoute(location.hash);
  const view = VIEWS.find((v) => v.name === route.view);
  if (!route.dc || !view) {
    const dc = route.dc || datacenters[0] || '';
    location.replace('#/' + encodeURIComponent(dc) + '/services');
    return;
  }
  if (current) current.controller.abort();
  errors.clear();
  showErrors();
  const controller = new AbortController();
  current = { controller, route };
  if (settings.dc !== route.dc) {
    settings.dc = route.dc;
    leaderBanner.hidden = true;
  }
  renderNav(route);
  renderDatacenters();
  watchLeader(controller.signal);
  const ctx = viewContext(route, controller.signal);
  const render = route.rest.length > 0 && route.rest.join('') !== '' && view.item ? view.item : view.list;
  render(ctx);
}

// watchLeader reads the datacenter's leader every few seconds: a view
// waiting on a blocking query learns of a lost leader only when its wait
// ends, and this shows it at once.
function watchLeader(signal) {
  watch('/v1/status/leader', {
    signal,
    onData(r) {
      showLeader(r.data !== '', settings.dc);
    },
  });
}

onLeaderStatus(showLeader);

function showLeader(known, dc) {
  if (dc !== settings.dc) return;
  leaderBanner.hidden = known;
  if (!known) {
    fill(leaderBanner, `No known cluster leader in datacenter ${dc}: what is shown may be out of date, and writes will fail until a leader is elected.`);
  }
}

dcSelect.addEventListener('change', () => {
  const route = parseRoute(location.hash);
  location.hash = '#/' + encodeURIComponent(dcSelect.value) + '/' + (route.view || 'services');
});

tokenInput.value = settings.token;
tokenForm.addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(tokenInput.value.trim());
  mount(); // everything again, with what the new token may see
});
document.getElementById('token-clear').addEventListener('click', () => {
  tokenInput.value = '';
  setToken('');
  mount();
});

window.addEventListener('hashchange', mount);

// The datacenters list fills the switcher and is kept up to date. A page
// opened without a datacenter in its route waits for it (the agent's own
// is listed first); one that names a datacenter is shown at once.
function start() {
  let mounted = parseRoute(location.hash).dc !== '';
  if (mounted) mount();
  const mountOnce = () => {
    if (!mounted) {
      mounted = true;
      mount();
    }
  };
  watch('/v1/catalog/datacenters', {
    signal: new AbortController().signal, // for the page's lifetime
    local: true,
    onData(r) {
      datacenters = r.data || [];
      renderDatacenters();
      if (errors.delete('datacenters')) showErrors();
      mountOnce();
    },
    onError(e, backoff) {
      mountOnce();
      errors.set('datacenters', `${e.describe()} — retrying in ${Math.round(backoff / 1000)} s`);
      showErrors();
    },
  });
}

start();
