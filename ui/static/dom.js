// DOM building. Everything the UI shows from the API goes through here as
// text: children are appended as text nodes, attributes are set one by one,
// and nothing is ever parsed as HTML, so a key or a service named
// "<script>" is shown as what it is.

// h creates an element. props: class, dataset, on<event> handlers, value,
// checked, hidden, and other attributes (false or null leaves one out).
// Children are elements or anything else, shown as text; arrays flatten.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'hidden') el.hidden = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

// append adds children to el: nodes as they are, everything else as text.
export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// fill replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// link is an anchor to a route of the UI (a hash).
export function link(route, ...children) {
  return h('a', { href: route }, ...children);
}

// table builds a table: headers are strings (a leading '#' right-aligns a
// numeric column), rows are arrays of cells (each an element, text, or
// {cell, class}); opts.rowProps(row index) gives a row's attributes.
export function table(headers, rows, opts = {}) {
  const numeric = headers.map((t) => t.startsWith('#'));
  const head = h('thead', null, h('tr', null, headers.map((t, i) =>
    h('th', { class: numeric[i] ? 'num' : null, scope: 'col' }, numeric[i] ? t.slice(1) : t))));
  const body = h('tbody', null, rows.map((cells, r) =>
    h('tr', opts.rowProps ? opts.rowProps(r) : null, cells.map((c, i) => {
      const cls = [numeric[i] ? 'num' : '', c && c.class ? c.class : ''].join(' ').trim() || null;
      return h('td', { class: cls }, c && c.cell !== undefined ? c.cell : c);
    }))));
  return h('table', opts.props || null, head, body);
}

// definitions is a <dl> of label/value pairs, skipping empty values.
export function definitions(pairs) {
  const dl = h('dl', { class: 'kv-grid' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('dt', null, k), h('dd', null, v));
  }
  return dl;
}

export function tags(list) {
  return (list || []).map((t) => h('span', { class: 'tag' }, t));
}

export function metaList(meta) {
  return Object.entries(meta || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => h('span', { class: 'meta' }, `${k}=${v}`));
}

export function statusBadge(status) {
  const s = ['passing', 'warning', 'critical'].includes(status) ? status : 'unknown';
  return h('span', { class: `status ${s}`, dataset: { status: s } }, status || 'unknown');
}

// healthCounts shows passing, warning and critical check counts.
export function healthCounts(c) {
  const one = (n, cls, sign, title) =>
    h('span', { class: n ? cls : `${cls} zero`, title: `${n} ${title}`, dataset: { [cls]: String(n) } }, `${sign} ${n}`);
  return h('span', { class: 'counts' },
    one(c.passing, 'passing', '✓', 'passing'),
    one(c.warning, 'warning', '!', 'warning'),
    one(c.critical, 'critical', '✗', 'critical'));
}

// pager shows "from–to of total" with previous and next buttons; onPage
// gets the new page number.
export function pager(page, pageSize, total, onPage) {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const from = total === 0 ? 0 : page * pageSize + 1;
  const to = Math.min(total, (page + 1) * pageSize);
  return h('div', { class: 'pager' },
    h('button', { type: 'button', class: 'page-prev', disabled: page <= 0, onclick: () => onPage(page - 1) }, '‹ Previous'),
    h('span', { class: 'page-info' }, `${from.toLocaleString('en')}–${to.toLocaleString('en')} of ${total.toLocaleString('en')}`),
    h('button', { type: 'button', class: 'page-next', disabled: page >= pages - 1, onclick: () => onPage(page + 1) }, 'Next ›'));
}

export function notice(kind, ...children) {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : null }, ...children);
}

// byName sorts strings as people expect ("web-2" before "web-10").
export const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
