// Services: the list (every service with its tags, instance count and
// health; searched, filtered and paged) and one service's instances.
//
// beacon has no /v1/internal/ui/services: the list is built from
// /v1/catalog/services (names and tags) and /v1/health/state/any (every
// check, aggregated per service here), each one blocking request. The
// exact instances of the rows on screen, which no list endpoint gives,
// are read per row (/v1/catalog/service/:name), at most a page of them,
// and again only when the catalog's services change.

import { h, fill, table, tags, metaList, statusBadge, healthCounts, pager, notice, definitions, collator } from './dom.js';
import { mapLimited } from './api.js';
import { worstStatus, countStatuses, instanceKey, indexChecks } from './health.js';

const PAGE_SIZE = 50;
// Requests in flight for the rows' instances: the browser has six
// connections per host and the view's blocking queries hold two.
const ROW_FETCHES = 3;

// The list's search, filter and page outlive a visit to one service.
const listState = { filter: '', status: 'all', page: 0 };

export function servicesView(ctx) {
  const { main } = ctx;
  let names = null; // sorted service names
  let services = {}; // name -> tags
  let searchText = new Map(); // name -> lower-case name and tags
  let servicesIndex = 0;
  let servicesFiltered = false;
  let checks = null; // indexChecks of /v1/health/state/any
  let checksFiltered = false;
  // name -> {index, instances: [{Node, ServiceID}]} or {index, error}
  const instances = new Map();
  const inFlight = new Set();
  let firstRowsMarked = false;

  const search = h('input', {
    type: 'search', id: 'service-search', placeholder: 'Search services by name or tag',
    value: listState.filter, 'aria-label': 'Search services',
    oninput: () => { listState.filter = search.value; listState.page = 0; render(); },
  });
  const statusFilter = h('select', {
    id: 'service-status', 'aria-label': 'Filter by health',
    onchange: () => { listState.status = statusFilter.value; listState.page = 0; render(); },
  }, ['all', 'passing', 'warning', 'critical'].map((s) =>
    h('option', { value: s }, s === 'all' ? 'any health' : s)));
  statusFilter.value = listState.status;
  const count = h('span', { class: 'count', id: 'service-count' });
  const notices = h('div', { id: 'services-notices' });
  const list = h('div', { id: 'services-list' }, h('p', { class: 'muted' }, 'Loading services…'));
  fill(main, h('h1', null, 'Services'),
    h('div', { class: 'toolbar' }, search, statusFilter, count), notices, list);

  let checksWatched = false;
  ctx.watch('/v1/catalog/services', {
    onData(r) {
      services = r.data || {};
      servicesIndex = r.index;
      servicesFiltered = r.filtered;
      names = Object.keys(services).sort(collator.compare);
      searchText = new Map(names.map((n) => [n, [n, ...(services[n] || [])].join('\n').toLowerCase()]));
      render();
      // The checks (every one: megabytes at 10,000 services) are asked
      // for once the names are on screen, so that fetching and parsing
      // them does not hold up the first rows.
      if (!checksWatched) {
        checksWatched = true;
        watchChecks();
      }
    },
  });
  function watchChecks() {
    ctx.watch('/v1/health/state/any', {
      onData(r) {
        checks = indexChecks(r.data || []);
        checksFiltered = r.filtered;
        ctx.schedule(render);
      },
    });
  }

  // summary is a service's health: exact once its instances are known,
  // else from the checks alone (instances with no check of their own are
  // not seen until then).
  function summary(name) {
    const known = instances.get(name);
    if (!checks) return { count: known && known.instances ? known.instances.length : null, counts: null, status: null, exact: false };
    let list;
    let count = null;
    let exact = false;
    if (known && known.instances) {
      exact = true;
      count = known.instances.length;
      list = [];
      const seenNodes = new Set();
      for (const inst of known.instances) {
        list.push(...(checks.byInstance.get(instanceKey(inst.Node, inst.ServiceID)) || []));
        if (!seenNodes.has(inst.Node)) {
          seenNodes.add(inst.Node);
          list.push(...(checks.byNode.get(inst.Node) || []));
        }
      }
    } else {
      const svc = checks.byService.get(name);
      list = svc ? [...svc.checks] : [];
      if (svc) for (const node of svc.nodes) list.push(...(checks.byNode.get(node) || []));
    }
    const counts = countStatuses(list);
    return { count, counts, status: worstStatus(list), exact, failed: !!(known && known.error) };
  }

  function matching() {
    if (!names) return [];
    const q = listState.filter.trim().toLowerCase();
    let out = q ? names.filter((n) => searchText.get(n).includes(q)) : names;
    if (listState.status !== 'all') {
      out = checks ? out.filter((n) => summary(n).status === listState.status) : [];
    }
    return out;
  }

  function render() {
    if (!names) return;
    const all = matching();
    const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
    listState.page = Math.min(listState.page, pages - 1);
    const page = all.slice(listState.page * PAGE_SIZE, (listState.page + 1) * PAGE_SIZE);
    fill(count, `${all.length.toLocaleString('en')} of ${names.length.toLocaleString('en')} services`);
    fill(notices,
      servicesFiltered || checksFiltered
        ? notice('warn', 'Some services or checks are hidden by ACLs: the token in use may not read them.') : null,
      names.length === 0 ? notice('info', 'No services registered in this datacenter.') : null,
      names.length > 0 && all.length === 0 ? notice('info', 'No service matches the search.') : null,
      listState.status !== 'all' && !checks ? notice('info', 'Loading checks…') : null);
    const rows = page.map((name) => {
      const s = summary(name);
      return [
        h('a', { href: ctx.href('services', name), class: 'service-name' }, name),
        h('span', null, tags(services[name])),
        { cell: s.count === null ? (s.failed ? '?' : '…') : String(s.count), class: 'instances' },
        s.counts ? healthCounts(s.counts) : h('span', { class: 'muted' }, '…'),
        s.status ? statusBadge(s.status) : h('span', { class: 'muted' }, '…'),
      ];
    });
    fill(list,
      rows.length ? table(['Service', 'Tags', '#Instances', 'Checks', 'Health'], rows, {
        props: { id: 'services-table' },
        rowProps: (i) => ({ class: 'service-row', dataset: { service: page[i] } }),
      }) : null,
      all.length > PAGE_SIZE ? pager(listState.page, PAGE_SIZE, all.length, (p) => { listState.page = p; render(); }) : null);
    if (rows.length && !firstRowsMarked) {
      firstRowsMarked = true;
      performance.mark('services-first-rows');
    }
    fetchInstances(page);
  }

  // fetchInstances reads the exact instances of the rows shown that are
  // not known at the current services index.
  function fetchInstances(page) {
    const want = page.filter((n) => {
      const known = instances.get(n);
      return !inFlight.has(n) && (!known || known.index !== servicesIndex);
    });
    if (want.length === 0) return;
    const index = servicesIndex;
    want.forEach((n) => inFlight.add(n));
    mapLimited(want, ROW_FETCHES, async (name) => {
      try {
        const r = await ctx.request('/v1/catalog/service/' + encodeURIComponent(name));
        instances.set(name, { index, instances: (r.data || []).map((e) => ({ Node: e.Node, ServiceID: e.ServiceID })) });
      } catch (e) {
        if (ctx.signal.aborted) return;
        instances.set(name, { index, error: e });
      } finally {
        inFlight.delete(name);
      }
    }).then(() => {
      if (!ctx.signal.aborted) ctx.schedule(render);
    });
  }
}

const INSTANCE_PAGE = 50;

export function serviceView(ctx) {
  const { main } = ctx;
  const name = decodeURIComponent(ctx.route.rest.join('/'));
  let page = 0;
  let entries = null;
  let filtered = false;
  const header = h('div');
  const body = h('div', { id: 'instances' }, h('p', { class: 'muted' }, 'Loading instances…'));
  fill(main,
    h('div', { class: 'crumbs' }, h('a', { href: ctx.href('services') }, 'Services'), ' / '),
    h('h1', { id: 'service-title' }, name), header, body);

  ctx.watch('/v1/health/service/' + encodeURIComponent(name), {
    onData(r) {
      entries = r.data || [];
      filtered = r.filtered;
      render();
    },
  });

  function render() {
    const all = entries.flatMap((e) => e.Checks || []);
    fill(header,
      definitions([
        ['Instances', String(entries.length)],
        ['Health', h('span', null, statusBadge(worstStatus(all)), ' ', healthCounts(countStatuses(all)))],
      ]),
      filtered ? notice('warn', 'Some instances are hidden by ACLs: the token in use may not read them.') : null,
      entries.length === 0 ? notice('info', `No instances of ${name} in datacenter ${ctx.dc}.`) : null);
    const shown = entries.slice(page * INSTANCE_PAGE, (page + 1) * INSTANCE_PAGE);
    fill(body, shown.map(instanceCard),
      entries.length > INSTANCE_PAGE ? pager(page, INSTANCE_PAGE, entries.length, (p) => { page = p; render(); }) : null);
  }

  function instanceCard(e) {
    const svc = e.Service || {};
    const node = e.Node || {};
    const address = svc.Address || node.Address || '';
    const checks = e.Checks || [];
    return h('section', { class: 'card instance', dataset: { instance: svc.ID, node: node.Node } },
      h('h3', null, svc.ID, ' ', statusBadge(worstStatus(checks))),
      definitions([
        ['Node', h('a', { href: ctx.href('nodes', node.Node), class: 'instance-node' }, node.Node)],
        ['Address', h('span', { class: 'mono instance-address' }, svc.Port ? `${address}:${svc.Port}` : address)],
        ['Tags', (svc.Tags || []).length ? h('span', { class: 'instance-tags' }, tags(svc.Tags)) : null],
        ['Meta', Object.keys(svc.Meta || {}).length ? h('span', { class: 'instance-meta' }, metaList(svc.Meta)) : null],
      ]),
      checksTable(checks));
  }
}

// checksTable lists checks with their status and output; shared with the
// node view.
export function checksTable(checks, ctx) {
  if (!checks.length) return h('p', { class: 'muted' }, 'No checks.');
  const sorted = [...checks].sort((a, b) => collator.compare(a.Name || a.CheckID, b.Name || b.CheckID));
  return table(['Check', 'Status', 'Output', 'Scope'], sorted.map((c) => [
    h('span', null, h('strong', null, c.Name || c.CheckID), h('div', { class: 'muted mono' }, c.CheckID),
      c.Notes ? h('div', { class: 'muted' }, c.Notes) : null),
    statusBadge(c.Status),
    c.Output ? h('pre', { class: 'check-output' }, c.Output) : h('span', { class: 'muted' }, '—'),
    c.ServiceID
      ? (ctx ? h('a', { href: ctx.href('services', c.ServiceName) }, `service ${c.ServiceName}`) : `service ${c.ServiceName || c.ServiceID}`)
      : 'node',
  ]), {
    props: { class: 'checks' },
    rowProps: (i) => ({ class: 'check-row', dataset: { check: sorted[i].CheckID, status: sorted[i].Status } }),
  });
}
