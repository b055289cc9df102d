// Health arithmetic shared by the views.

const RANK = { passing: 0, warning: 1, critical: 2 };

// worstStatus is the status a set of checks adds up to: any critical is
// critical, else any warning is warning; no checks count as passing (as
// Consul and DNS treat them).
export function worstStatus(checks) {
  let worst = 'passing';
  for (const c of checks) {
    const s = c.Status in RANK ? c.Status : 'critical'; // unknown: assume the worst
    if (RANK[s] > RANK[worst]) worst = s;
  }
  return worst;
}

export function countStatuses(checks) {
  const out = { passing: 0, warning: 0, critical: 0 };
  for (const c of checks) {
    if (c.Status in out) out[c.Status]++;
    else out.critical++;
  }
  return out;
}

export function instanceKey(node, serviceID) {
  return node + '\u0000' + serviceID;
}

// indexChecks groups a list of checks (/v1/health/state/any) by service,
// instance and node. Node checks (no ServiceID) apply to every instance on
// their node.
export function indexChecks(list) {
  const byService = new Map(); // name -> {checks, nodes}
  const byInstance = new Map(); // instanceKey -> checks
  const byNode = new Map(); // node -> node checks
  const allByNode = new Map(); // node -> every check on it
  for (const c of list) {
    push(allByNode, c.Node, c);
    if (!c.ServiceID) {
      push(byNode, c.Node, c);
      continue;
    }
    let svc = byService.get(c.ServiceName);
    if (!svc) {
      svc = { checks: [], nodes: new Set() };
      byService.set(c.ServiceName, svc);
    }
    svc.checks.push(c);
    svc.nodes.add(c.Node);
    push(byInstance, instanceKey(c.Node, c.ServiceID), c);
  }
  return { byService, byInstance, byNode, allByNode };
}

function push(map, key, value) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
