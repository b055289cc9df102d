// Key/Value: browse folders, view, create, edit and delete keys. Edits are
// check-and-set (?cas=<ModifyIndex the editor started from>), so two
// editors cannot overwrite each other without knowing: the second save is
// refused and says so.

import { h, fill, table, pager, notice, definitions, collator } from './dom.js';
import { kvPath } from './api.js';

const PAGE_SIZE = 100;

export function kvView(ctx) {
  const key = ctx.route.rest.map(decodeURIComponent).join('/');
  if (key === '' || key.endsWith('/')) folderView(ctx, key);
  else keyView(ctx, key);
}

// kvHref is the route of a key or folder.
function kvHref(ctx, key) {
  return ctx.href('kv', ...key.split('/'));
}

// crumbs links every folder above key.
function crumbs(ctx, key) {
  if (key === '') return null; // the root: its title says it
  const parts = key.split('/');
  const out = [h('a', { href: ctx.href('kv', '') }, 'Key/Value'), ' / '];
  let prefix = '';
  for (let i = 0; i < parts.length - 1; i++) {
    prefix += parts[i] + '/';
    out.push(h('a', { href: kvHref(ctx, prefix) }, parts[i]), ' / ');
  }
  return h('div', { class: 'crumbs', id: 'kv-crumbs' }, out);
}

function describe(e) {
  return e.describe ? e.describe() : String(e);
}

function folderView(ctx, prefix) {
  const { main } = ctx;
  let keys = null;
  let filtered = false;
  let page = 0;
  let filter = '';

  const search = h('input', {
    type: 'search', id: 'kv-search', placeholder: 'Filter this folder', 'aria-label': 'Filter keys',
    oninput: () => { filter = search.value; page = 0; render(); },
  });
  const count = h('span', { class: 'count', id: 'kv-count' });
  const status = h('div', { id: 'kv-status' });
  const list = h('div', { id: 'kv-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const confirmArea = h('div');

  const newKey = h('input', { id: 'kv-new-key', placeholder: 'name, or name/ for a folder', required: true, spellcheck: 'false' });
  const newValue = h('textarea', { id: 'kv-new-value', spellcheck: 'false' });
  const createForm = h('form', { class: 'editor', id: 'kv-create-form', onsubmit: create },
    h('label', null, `New key in ${prefix || 'the root'}`, newKey),
    h('label', null, 'Value', newValue),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary', id: 'kv-create' }, 'Create')));

  fill(main, crumbs(ctx, prefix),
    h('h1', { id: 'kv-title' }, prefix || 'Key/Value'),
    h('div', { class: 'toolbar' }, search,
      prefix ? h('button', { type: 'button', class: 'danger', id: 'kv-delete-folder', onclick: askDelete }, `Delete ${prefix}…`) : null,
      count),
    confirmArea, status, list,
    h('h2', null, 'Create'), createForm);

  ctx.watch(kvPath(prefix), {
    params: { keys: true, separator: '/' },
    allow404: true,
    onData(r) {
      keys = (r.data || []).filter((k) => k !== prefix).sort(collator.compare);
      filtered = r.filtered;
      render();
    },
  });

  function render() {
    if (!keys) return;
    const q = filter.trim().toLowerCase();
    const all = q ? keys.filter((k) => k.slice(prefix.length).toLowerCase().includes(q)) : keys;
    page = Math.min(page, Math.max(0, Math.ceil(all.length / PAGE_SIZE) - 1));
    const shown = all.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    fill(count, `${all.length.toLocaleString('en')} entries`);
    fill(list,
      filtered ? notice('warn', 'Some keys are hidden by ACLs: the token in use may not read them.') : null,
      keys.length === 0 ? notice('info', prefix ? `${prefix} is empty.` : 'The store is empty.') : null,
      shown.length ? table(['Name', 'Kind'], shown.map((k) => {
        const isFolder = k.endsWith('/');
        return [
          h('a', { href: kvHref(ctx, k), class: isFolder ? 'icon-folder' : null }, k.slice(prefix.length)),
          isFolder ? 'folder' : 'key',
        ];
      }), { props: { id: 'kv-table' }, rowProps: (i) => ({ class: 'kv-row', dataset: { key: shown[i] } }) }) : null,
      all.length > PAGE_SIZE ? pager(page, PAGE_SIZE, all.length, (p) => { page = p; render(); }) : null);
  }

  async function create(e) {
    e.preventDefault();
    const name = newKey.value.trim().replace(/^\/+/, '');
    if (!name) return;
    const full = prefix + name;
    try {
      // cas=0: only if no such key exists, so creating never overwrites.
      const r = await ctx.request(kvPath(full), { method: 'PUT', params: { cas: 0 }, body: name.endsWith('/') ? '' : newValue.value });
      if (r.data !== true) {
        fill(status, notice('error', `A key named ${full} already exists: it was not changed.`));
        return;
      }
      location.hash = kvHref(ctx, full);
    } catch (err) {
      if (!ctx.signal.aborted) fill(status, notice('error', `Not created: ${describe(err)}`));
    }
  }

  async function askDelete() {
    let total = null;
    try {
      const r = await ctx.request(kvPath(prefix), { params: { keys: true }, allow404: true });
      total = (r.data || []).length;
    } catch {
      // the count is only for the question
    }
    fill(confirmArea, h('div', { class: 'confirm', id: 'kv-confirm' },
      h('span', null, `Delete ${prefix} and everything under it` + (total === null ? '?' : ` (${total} ${total === 1 ? 'key' : 'keys'})?`)),
      h('button', { type: 'button', class: 'danger', id: 'kv-confirm-delete', onclick: deleteFolder }, 'Delete everything'),
      h('button', { type: 'button', id: 'kv-confirm-cancel', onclick: () => fill(confirmArea) }, 'Cancel')));
  }

  async function deleteFolder() {
    try {
      await ctx.request(kvPath(prefix), { method: 'DELETE', params: { recurse: true } });
      const parent = prefix.slice(0, -1).split('/').slice(0, -1).join('/');
      location.hash = kvHref(ctx, parent ? parent + '/' : '');
    } catch (err) {
      if (!ctx.signal.aborted) fill(confirmArea, notice('error', `Not deleted: ${describe(err)}`));
    }
  }
}

// decodeValue turns a base64 KV value into text, or null when it is not
// UTF-8 (shown as base64, read-only).
function decodeValue(b64) {
  if (!b64) return { text: '', binary: false, size: 0 };
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), binary: false, size: bytes.length };
  } catch {
    return { text: b64, binary: true, size: bytes.length };
  }
}

function keyView(ctx, key) {
  const { main } = ctx;
  let entry; // undefined: loading; null: no such key
  // The ModifyIndex the editor's text was loaded from: the save's cas.
  // 0 saves only if the key does not exist.
  let baseIndex = 0;
  let dirty = false;

  const info = h('div', { id: 'kv-info' });
  const changed = h('div', { id: 'kv-changed' });
  const status = h('div', { id: 'kv-status' });
  const confirmArea = h('div');
  const value = h('textarea', { id: 'kv-value', spellcheck: 'false', 'aria-label': 'Value', oninput: () => { dirty = true; } });
  const saveButton = h('button', { type: 'submit', class: 'primary', id: 'kv-save' }, 'Save');
  const form = h('form', { class: 'editor', id: 'kv-edit-form', onsubmit: save },
    h('label', null, 'Value', value),
    h('div', { class: 'buttons' },
      saveButton,
      h('button', { type: 'button', class: 'danger', id: 'kv-delete', onclick: askDelete }, 'Delete')));
  fill(main, crumbs(ctx, key), h('h1', { id: 'kv-title' }, key.split('/').pop()),
    info, changed, status, confirmArea, form);

  ctx.watch(kvPath(key), {
    allow404: true,
    onData(r) {
      entry = r.data ? r.data[0] : null;
      render();
    },
  });

  function load() {
    const v = entry ? decodeValue(entry.Value) : { text: '', binary: false };
    value.value = v.text;
    // A value that is not UTF-8 is shown as base64: saving that text
    // would replace the bytes with it.
    value.readOnly = v.binary;
    saveButton.disabled = v.binary;
    baseIndex = entry ? entry.ModifyIndex : 0;
    dirty = false;
    fill(changed);
  }

  function render() {
    if (entry === undefined) return;
    if (!dirty) load();
    const v = entry ? decodeValue(entry.Value) : null;
    fill(info, entry
      ? definitions([
        ['Key', h('span', { class: 'mono', id: 'kv-key' }, entry.Key)],
        ['Modify index', h('span', { id: 'kv-modify-index' }, String(entry.ModifyIndex))],
        ['Create index', String(entry.CreateIndex)],
        ['Flags', String(entry.Flags)],
        ['Lock index', String(entry.LockIndex)],
        ['Locked by session', entry.Session ? h('a', { href: ctx.href('sessions'), class: 'mono', id: 'kv-session' }, entry.Session) : null],
        ['Size', `${v.size} bytes${v.binary ? ' (not UTF-8: shown as base64, read-only)' : ''}`],
      ])
      : notice('info', `${key} does not exist (deleted?). Saving creates it again.`));
    if (dirty && (entry ? entry.ModifyIndex : 0) !== baseIndex) {
      fill(changed, notice('warn',
        `Someone else changed this key since you began editing (it is now at index ${entry ? entry.ModifyIndex : 'none: deleted'}). ` +
        'Saving will be refused. ',
        h('button', { type: 'button', id: 'kv-reload', onclick: () => { load(); fill(status); } }, 'Load the current value (discard my edits)')));
    }
  }

  async function save(e) {
    e.preventDefault();
    if (saveButton.disabled) return;
    const text = value.value;
    const cas = baseIndex;
    fill(status);
    try {
      const r = await ctx.request(kvPath(key), { method: 'PUT', params: { cas }, body: text });
      if (r.data !== true) {
        const conflict = notice('error', h('strong', null, 'Conflict: not saved. '),
          cas === 0
            ? 'The key was created by someone else meanwhile. '
            : `The key was changed by someone else since you loaded it (you started from index ${cas}). `,
          'Your text is still in the editor; load the current value to see theirs.');
        conflict.id = 'kv-conflict';
        fill(status, conflict);
        dirty = true;
        render();
        return;
      }
      // Learn the index this save made, so the editor goes on from it; if
      // someone wrote again in between, the watch shows it as a change.
      const after = await ctx.request(kvPath(key), { allow404: true });
      const now = after.data ? after.data[0] : null;
      if (now && decodeValue(now.Value).text === text) {
        entry = now;
        baseIndex = now.ModifyIndex;
        dirty = false;
        fill(changed);
      }
      fill(status, h('div', { class: 'notice ok', id: 'kv-saved' }, `Saved ${key}.`));
      render();
    } catch (err) {
      if (!ctx.signal.aborted) fill(status, notice('error', `Not saved: ${describe(err)}`));
    }
  }

  function askDelete() {
    fill(confirmArea, h('div', { class: 'confirm', id: 'kv-confirm' },
      h('span', null, `Delete ${key}?`),
      h('button', { type: 'button', class: 'danger', id: 'kv-confirm-delete', onclick: remove }, 'Delete'),
      h('button', { type: 'button', id: 'kv-confirm-cancel', onclick: () => fill(confirmArea) }, 'Cancel')));
  }

  async function remove() {
    try {
      // cas: do not delete a value this page has not shown.
      const r = await ctx.request(kvPath(key), { method: 'DELETE', params: { cas: entry ? entry.ModifyIndex : 0 } });
      if (r.data !== true) {
        fill(confirmArea, notice('error', 'Not deleted: the key changed since it was shown. Look at it again first.'));
        return;
      }
      const parent = key.split('/').slice(0, -1).join('/');
      location.hash = kvHref(ctx, parent ? parent + '/' : '');
    } catch (err) {
      if (!ctx.signal.aborted) fill(confirmArea, notice('error', `Not deleted: ${describe(err)}`));
    }
  }
}
