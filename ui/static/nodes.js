// Nodes: the list (address, health, every check's status, round trip
// time from this agent) and one node's services, checks and network
// coordinate.

import { h, fill, table, tags, statusBadge, healthCounts, pager, notice, definitions, metaList, collator } from './dom.js';
import { request } from './api.js';
import { worstStatus, countStatuses, indexChecks } from './health.js';
import { checksTable } from './services.js';

const PAGE_SIZE = 100;
const listState = { filter: '', page: 0 };

// The agent's own node, which round trip times are estimated from; read
// once per page (it needs agent:read, and is left out without it).
let agentNode = null;
async function loadAgentNode(signal) {
  if (agentNode !== null) return agentNode;
  try {
    const r = await request('/v1/agent/self', { signal });
    agentNode = (r.data && r.data.Config && r.data.Config.NodeName) || '';
  } catch {
    agentNode = '';
  }
  return agentNode;
}

// rttSeconds estimates the round trip between two network coordinates,
// as serf's Coordinate.DistanceTo does.
export function rttSeconds(a, b) {
  let sum = 0;
  for (let i = 0; i < a.Vec.length; i++) {
    const d = a.Vec[i] - (b.Vec[i] || 0);
    sum += d * d;
  }
  const dist = Math.sqrt(sum) + a.Height + b.Height;
  const adjusted = dist + a.Adjustment + b.Adjustment;
  return adjusted > 0 ? adjusted : dist;
}

export function formatRTT(seconds) {
  return `${(seconds * 1000).toFixed(3)} ms`;
}

// coordinateMap keys the default segment's coordinates by node.
function coordinateMap(list) {
  const out = new Map();
  for (const c of list || []) if (!c.Segment) out.set(c.Node, c.Coord);
  return out;
}

export function nodesView(ctx) {
  const { main } = ctx;
  let nodes = null;
  let nodesFiltered = false;
  let checks = null;
  let coords = new Map();
  let from = '';

  const search = h('input', {
    type: 'search', id: 'node-search', placeholder: 'Search nodes by name or address',
    value: listState.filter, 'aria-label': 'Search nodes',
    oninput: () => { listState.filter = search.value; listState.page = 0; render(); },
  });
  const count = h('span', { class: 'count', id: 'node-count' });
  const notices = h('div');
  const list = h('div', { id: 'nodes-list' }, h('p', { class: 'muted' }, 'Loading nodes…'));
  fill(main, h('h1', null, 'Nodes'), h('div', { class: 'toolbar' }, search, count), notices, list);

  loadAgentNode(ctx.signal).then((n) => { from = n; ctx.schedule(render); });
  ctx.watch('/v1/catalog/nodes', {
    onData(r) {
      nodes = (r.data || []).sort((a, b) => collator.compare(a.Node, b.Node));
      nodesFiltered = r.filtered;
      ctx.schedule(render);
    },
  });
  ctx.watch('/v1/health/state/any', {
    onData(r) { checks = indexChecks(r.data || []); ctx.schedule(render); },
  });
  ctx.watch('/v1/coordinate/nodes', {
    onData(r) { coords = coordinateMap(r.data); ctx.schedule(render); },
  });

  function render() {
    if (!nodes) return;
    const q = listState.filter.trim().toLowerCase();
    const all = q ? nodes.filter((n) => n.Node.toLowerCase().includes(q) || (n.Address || '').includes(q)) : nodes;
    const page = all.slice(listState.page * PAGE_SIZE, (listState.page + 1) * PAGE_SIZE);
    const origin = from ? coords.get(from) : null;
    fill(count, `${all.length.toLocaleString('en')} of ${nodes.length.toLocaleString('en')} nodes`);
    fill(notices,
      nodesFiltered ? notice('warn', 'Some nodes are hidden by ACLs: the token in use may not read them.') : null,
      nodes.length === 0 ? notice('info', 'No nodes.') : null);
    const rttHeader = origin ? `#RTT from ${from}` : '#RTT';
    fill(list,
      table(['Node', 'Address', 'Health', 'Checks', rttHeader], page.map((n) => {
        const nodeChecks = checks ? checks.byNode.get(n.Node) || [] : null;
        const every = checks ? checks.allByNode.get(n.Node) || [] : null;
        const c = coords.get(n.Node);
        return [
          h('a', { href: ctx.href('nodes', n.Node), class: 'node-name' }, n.Node),
          h('span', { class: 'mono' }, n.Address),
          nodeChecks ? statusBadge(worstStatus(nodeChecks)) : '…',
          every ? healthCounts(countStatuses(every)) : '…',
          { cell: origin && c ? formatRTT(rttSeconds(origin, c)) : '—', class: 'rtt' },
        ];
      }), { props: { id: 'nodes-table' }, rowProps: (i) => ({ class: 'node-row', dataset: { node: page[i].Node } }) }),
      all.length > PAGE_SIZE ? pager(listState.page, PAGE_SIZE, all.length, (p) => { listState.page = p; render(); }) : null);
  }
}

export function nodeView(ctx) {
  const { main } = ctx;
  const name = decodeURIComponent(ctx.route.rest.join('/'));
  let info; // undefined: loading; null: no such node
  let checks = null;
  let coords = null;
  let from = '';
  const body = h('div', { id: 'node-detail' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main,
    h('div', { class: 'crumbs' }, h('a', { href: ctx.href('nodes') }, 'Nodes'), ' / '),
    h('h1', { id: 'node-title' }, name), body);

  loadAgentNode(ctx.signal).then((n) => { from = n; ctx.schedule(render); });
  ctx.watch('/v1/catalog/node/' + encodeURIComponent(name), {
    onData(r) { info = r.data; ctx.schedule(render); },
  });
  ctx.watch('/v1/health/node/' + encodeURIComponent(name), {
    onData(r) { checks = r.data || []; ctx.schedule(render); },
  });
  ctx.watch('/v1/coordinate/nodes', {
    onData(r) { coords = coordinateMap(r.data); ctx.schedule(render); },
  });

  function render() {
    if (info === undefined) return;
    if (info === null) {
      fill(body, notice('info', `No node ${name} in datacenter ${ctx.dc}.`));
      return;
    }
    const node = info.Node || {};
    const services = Object.values(info.Services || {}).sort((a, b) => collator.compare(a.ID, b.ID));
    const nodeChecks = (checks || []).filter((c) => !c.ServiceID);
    const coord = coords ? coords.get(name) : null;
    const origin = coords && from ? coords.get(from) : null;
    fill(body,
      definitions([
        ['Health', checks ? h('span', { id: 'node-health' }, statusBadge(worstStatus(nodeChecks)), ' ',
          healthCounts(countStatuses(checks))) : '…'],
        ['Address', h('span', { class: 'mono', id: 'node-address' }, node.Address)],
        ['Datacenter', node.Datacenter],
        ['ID', node.ID ? h('span', { class: 'mono' }, node.ID) : null],
        ['Tagged addresses', Object.keys(node.TaggedAddresses || {}).length ? metaList(node.TaggedAddresses) : null],
        ['Meta', Object.keys(node.Meta || {}).length ? metaList(node.Meta) : null],
      ]),
      h('h2', null, 'Network coordinate'),
      coordinateSection(coord, origin, from, coords),
      h('h2', null, `Services (${services.length})`),
      services.length ? table(['Service', 'ID', 'Address', 'Tags', 'Health'], services.map((s) => {
        const own = (checks || []).filter((c) => c.ServiceID === s.ID).concat(nodeChecks);
        return [
          h('a', { href: ctx.href('services', s.Service) }, s.Service),
          h('span', { class: 'mono' }, s.ID),
          h('span', { class: 'mono' }, `${s.Address || node.Address}${s.Port ? ':' + s.Port : ''}`),
          h('span', null, tags(s.Tags)),
          checks ? statusBadge(worstStatus(own)) : '…',
        ];
      }), { props: { id: 'node-services' }, rowProps: (i) => ({ dataset: { service: services[i].ID } }) })
        : h('p', { class: 'muted' }, 'No services on this node.'),
      h('h2', null, 'Checks'),
      checks ? h('div', { id: 'node-checks' }, checksTable(checks, ctx)) : h('p', { class: 'muted' }, 'Loading…'));
  }

  function coordinateSection(coord, origin, fromNode, all) {
    if (!all) return h('p', { class: 'muted' }, 'Loading…');
    if (!coord) return h('p', { class: 'muted', id: 'node-coordinate' }, 'No coordinate yet: the agent sends one soon after it joins.');
    const others = [...all.entries()].filter(([n]) => n !== name).map(([, c]) => rttSeconds(coord, c)).sort((a, b) => a - b);
    return h('div', { id: 'node-coordinate' }, definitions([
      ['RTT from ' + (fromNode || 'this agent'), origin ? h('span', { id: 'node-rtt' }, formatRTT(rttSeconds(origin, coord))) : null],
      ['RTT to other nodes', others.length ? `min ${formatRTT(others[0])}, median ${formatRTT(others[Math.floor(others.length / 2)])}, max ${formatRTT(others[others.length - 1])}` : null],
      ['Vector', h('span', { class: 'mono' }, coord.Vec.map((v) => v.toFixed(6)).join(', '))],
      ['Height', h('span', { class: 'mono' }, coord.Height.toExponential(3))],
      ['Adjustment', h('span', { class: 'mono' }, coord.Adjustment.toExponential(3))],
      ['Error', h('span', { class: 'mono' }, coord.Error.toFixed(4))],
    ]));
  }
}
