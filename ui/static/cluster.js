// The cluster: sessions and the locks they hold, gossip members, and the
// Raft peers with the leader marked.

import { h, fill, table, notice, collator } from './dom.js';

// formatNanos shows a Go duration given in nanoseconds.
function formatNanos(ns) {
  if (!ns) return '0s';
  const s = ns / 1e9;
  return s >= 1 ? `${+s.toFixed(3)}s` : `${+(ns / 1e6).toFixed(3)}ms`;
}

export function sessionsView(ctx) {
  const { main } = ctx;
  let sessions = null;
  let sessionsFiltered = false;
  let locks = null; // KV entries held by a session
  let kvFiltered = false;
  const notices = h('div');
  const sessionList = h('div', { id: 'sessions-list' }, h('p', { class: 'muted' }, 'Loading sessions…'));
  const lockList = h('div', { id: 'locks-list' }, h('p', { class: 'muted' }, 'Loading locks…'));
  fill(main, h('h1', null, 'Sessions'), notices, sessionList, h('h2', null, 'Locks held'), lockList);

  ctx.watch('/v1/session/list', {
    onData(r) {
      sessions = (r.data || []).sort((a, b) => collator.compare(a.Name || a.ID, b.Name || b.ID));
      sessionsFiltered = r.filtered;
      ctx.schedule(render);
    },
  });
  // A lock is a key whose Session is set: they are found among all keys
  // (there is no index of keys by session).
  ctx.watch('/v1/kv/', {
    params: { recurse: true },
    allow404: true,
    onData(r) {
      locks = (r.data || []).filter((e) => e.Session).map(({ Key, Session, LockIndex }) => ({ Key, Session, LockIndex }));
      kvFiltered = r.filtered;
      ctx.schedule(render);
    },
  });

  function render() {
    const byID = new Map((sessions || []).map((s) => [s.ID, s]));
    const held = new Map();
    for (const l of locks || []) {
      if (!held.has(l.Session)) held.set(l.Session, []);
      held.get(l.Session).push(l.Key);
    }
    const kvLink = (k) => h('a', { href: ctx.href('kv', ...k.split('/')), class: 'mono' }, k);
    fill(notices,
      sessionsFiltered ? notice('warn', 'Some sessions are hidden by ACLs: the token in use may not read them.') : null,
      kvFiltered ? notice('warn', 'Some keys are hidden by ACLs: locks on them are not shown.') : null);
    if (sessions) {
      fill(sessionList, sessions.length === 0 ? notice('info', 'No sessions.') :
        table(['Name', 'ID', 'Node', 'Behavior', 'TTL', 'Lock delay', 'Checks', 'Locks held'], sessions.map((s) => [
          s.Name || h('span', { class: 'muted' }, '(no name)'),
          h('span', { class: 'mono' }, s.ID),
          h('a', { href: ctx.href('nodes', s.Node) }, s.Node),
          s.Behavior,
          s.TTL || '—',
          formatNanos(s.LockDelay),
          [...(s.NodeChecks || []), ...(s.ServiceChecks || []).map((c) => c.ID)].join(', ') || '—',
          (held.get(s.ID) || []).map((k) => h('div', null, kvLink(k))),
        ]), { props: { id: 'sessions-table' }, rowProps: (i) => ({ class: 'session-row', dataset: { session: sessions[i].ID } }) }));
    }
    if (locks) {
      fill(lockList, locks.length === 0 ? notice('info', 'No key is locked.') :
        table(['Key', 'Session', 'Node', '#Lock index'], locks.map((l) => {
          const s = byID.get(l.Session);
          return [
            kvLink(l.Key),
            h('span', null, s && s.Name ? `${s.Name} ` : '', h('span', { class: 'mono muted' }, l.Session)),
            s ? h('a', { href: ctx.href('nodes', s.Node) }, s.Node) : '—',
            String(l.LockIndex),
          ];
        }), { props: { id: 'locks-table' }, rowProps: (i) => ({ class: 'lock-row', dataset: { lock: locks[i].Key, session: locks[i].Session } }) }));
    }
  }
}

// Serf's member statuses.
const MEMBER_STATUS = ['none', 'alive', 'leaving', 'left', 'failed'];
const MEMBER_BADGE = { alive: 'passing', leaving: 'warning', left: 'unknown', failed: 'critical', none: 'unknown' };

let membersPool = 'lan';

export function membersView(ctx) {
  const { main } = ctx;
  const pool = h('select', {
    id: 'members-pool', 'aria-label': 'Gossip pool',
    onchange: () => { membersPool = pool.value; controller.abort(); membersView(ctx); },
  }, h('option', { value: 'lan' }, 'LAN pool'), h('option', { value: 'wan' }, 'WAN pool (servers of every datacenter)'));
  pool.value = membersPool;
  const notices = h('div');
  const list = h('div', { id: 'members-list' }, h('p', { class: 'muted' }, 'Loading members…'));
  fill(main, h('h1', null, 'Gossip members'),
    h('div', { class: 'toolbar' }, pool, h('span', { class: 'muted' }, 'as this agent sees them')), notices, list);

  // Choosing another pool draws the view again; this watch ends then.
  const controller = new AbortController();
  ctx.signal.addEventListener('abort', () => controller.abort(), { once: true });

  ctx.watch('/v1/agent/members', {
    params: { wan: membersPool === 'wan' ? 1 : undefined },
    signal: controller.signal,
    onData(r) {
      if (controller.signal.aborted) return;
      const members = (r.data || []).sort((a, b) => collator.compare(a.Name, b.Name));
      fill(notices, r.filtered ? notice('warn', 'Some members are hidden by ACLs: the token in use may not read them.') : null);
      fill(list, members.length === 0 ? notice('info', 'No members in this pool.') :
        table(['Name', 'Address', 'Status', 'Role', 'Datacenter', 'Version'], members.map((m) => {
          const status = MEMBER_STATUS[m.Status] || `status ${m.Status}`;
          const t = m.Tags || {};
          return [
            m.Name,
            h('span', { class: 'mono' }, `${m.Addr}:${m.Port}`),
            h('span', { class: `status ${MEMBER_BADGE[status] || 'unknown'}` }, status),
            t.role === 'consul' ? 'server' : 'client',
            t.dc || '—',
            t.build || t.version || '—',
          ];
        }), { props: { id: 'members-table' }, rowProps: (i) => ({ class: 'member-row', dataset: { member: members[i].Name, status: MEMBER_STATUS[members[i].Status] || '' } }) }));
    },
  });
}

export function raftView(ctx) {
  const { main } = ctx;
  const summary = h('div', { id: 'raft-summary' });
  const list = h('div', { id: 'raft-list' }, h('p', { class: 'muted' }, 'Loading the Raft configuration…'));
  fill(main, h('h1', null, 'Raft peers'), summary, list);

  ctx.watch('/v1/operator/raft/configuration', {
    onData(r) {
      const servers = (r.data && r.data.Servers) || [];
      const leader = servers.find((s) => s.Leader);
      fill(summary, leader
        ? notice('ok', 'Leader: ', h('strong', { id: 'raft-leader' }, leader.Node), ` (${leader.Address})`)
        : notice('error', 'No leader: the servers are electing one, or a quorum is lost.'));
      fill(list, table(['Node', 'ID', 'Address', 'Role', 'Voter'], servers.map((s) => [
        s.Node,
        h('span', { class: 'mono' }, s.ID),
        h('span', { class: 'mono' }, s.Address),
        s.Leader ? h('span', { class: 'leader-mark' }, '★ leader') : 'follower',
        s.Voter ? 'yes' : 'no',
      ]), { props: { id: 'raft-table' }, rowProps: (i) => ({ class: 'raft-row', dataset: { node: servers[i].Node, leader: String(!!servers[i].Leader) } }) }));
    },
  });
}
