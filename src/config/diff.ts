/**
 * Old config vs new → what a reload must do, or why it cannot. Listeners,
 * handlers, the account store, limits, logging, admin.info and federation
 * peers change live;
 * anything else refuses the whole reload, so a reload never half-applies.
 * @module
 */
import { DEFAULT_UNIX_SOCKET_MODE } from "./defaults.ts";
import { formatFileMode } from "./file-mode.ts";
import type { Config, HandlerConfig, ListenerKind } from "./types.ts";

export interface ReloadPlan {
  /** Listener kinds to close: removed, or bound elsewhere now. */
  closeListeners: ListenerKind[];
  /** Listener kinds to open: added, or bound elsewhere now. */
  openListeners: ListenerKind[];
  /** Handler types to stop: removed or changed. */
  stopHandlers: string[];
  /** Handlers to start: added or changed. */
  startHandlers: HandlerConfig[];
  /** The account store must be reopened. */
  reopenAccounts: boolean;
  /** One line per change, for the log and the reload response. */
  changes: string[];
}

/** Keys applied in place or through the plan; any other top-level key must not change. */
const RELOADABLE = new Set(["source", "network", "handlers", "database", "admin", "limits", "log", "federation", "delivery", "cluster"]);

/** JSON with sorted keys, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
/** A limit as a change line shows it: a number as it is, a block as JSON. */
const shown = (value: unknown) => (typeof value === "object" && value !== null ? canonical(value) : String(value));

function where(c: Config, kind: ListenerKind): string {
  if (kind === "unix") {
    const { address, mode } = c.network.unix!;
    return mode === DEFAULT_UNIX_SOCKET_MODE ? address : `${address} mode ${formatFileMode(mode)}`;
  }
  if (kind === "ws") {
    const w = c.network.ws!;
    const host = w.address.includes(":") ? `[${w.address}]` : w.address;
    return `${w.tls ? "wss" : "ws"}://${host}:${w.port}${w.path}`;
  }
  const b = c.network[kind]!;
  return (kind === "tcp6" ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`) + (b.tls ? " with TLS" : "");
}

/** A TLS listener's certificate and key, as their files held them. */
export interface TlsPair {
  cert: string;
  key: string;
}

/**
 * Adds to `plan` every TLS listener kept by it whose files now hold another
 * certificate or key (renewed in place): closed and opened again with what
 * they hold now, which is returned by kind. `current` gives what a listener
 * was opened with (undefined: plain); `read` reads its files now, throwing
 * an error that names the file it cannot use, which refuses the reload.
 */
export function planRenewals<T extends TlsPair>(
  plan: ReloadPlan,
  kinds: ListenerKind[],
  current: (kind: ListenerKind) => TlsPair | undefined,
  read: (kind: ListenerKind) => T | undefined,
): Map<ListenerKind, T> {
  const renewed = new Map<ListenerKind, T>();
  for (const kind of kinds) {
    const was = current(kind);
    if (was === undefined || plan.openListeners.includes(kind)) continue;
    let now: T | undefined;
    try {
      now = read(kind);
    } catch (err) {
      throw new Error(`${kind} listener: ${(err as Error).message}`, { cause: err });
    }
    if (now !== undefined && (now.cert !== was.cert || now.key !== was.key)) {
      renewed.set(kind, now);
      plan.closeListeners.push(kind);
      plan.openListeners.push(kind);
      plan.changes.push(`listener ${kind} reopened with the certificate now in its files`);
    }
  }
  return renewed;
}

/** What a key amounts to for the running gateway: where a switched-off service would listen is nothing. */
function inEffect(c: Config, key: string): unknown {
  const value = (c as unknown as Record<string, unknown>)[key];
  if ((key === "control" || key === "informer") && !(value as { enabled: boolean }).enabled) return { enabled: false };
  return value;
}

export function planReload(old: Config, next: Config): { ok: true; plan: ReloadPlan } | { ok: false; reasons: string[] } {
  const reasons: string[] = [];
  for (const key of new Set([...Object.keys(old), ...Object.keys(next)])) {
    if (RELOADABLE.has(key)) continue;
    if (!same(inEffect(old, key), inEffect(next, key))) {
      reasons.push(`${key}: changed, but it cannot be changed while running; restart the gateway to apply it`);
    }
  }
  // Other nodes know this one by its name and its subscriptions: it joins, leaves or changes only by a restart.
  if (!same(old.cluster, next.cluster)) {
    reasons.push("cluster: changed, but a node cannot join, leave or change its cluster settings while running; restart the gateway to apply it");
  }
  if (reasons.length > 0) return { ok: false, reasons };

  const plan: ReloadPlan = {
    closeListeners: [],
    openListeners: [],
    stopHandlers: [],
    startHandlers: [],
    reopenAccounts: false,
    changes: [],
  };

  const kinds = new Set<ListenerKind>([...old.network.types, ...next.network.types]);
  for (const kind of kinds) {
    const had = old.network.types.includes(kind);
    const has = next.network.types.includes(kind);
    if (had && !has) {
      plan.closeListeners.push(kind);
      plan.changes.push(`listener ${kind} removed (${where(old, kind)})`);
    } else if (!had && has) {
      plan.openListeners.push(kind);
      plan.changes.push(`listener ${kind} added (${where(next, kind)})`);
    } else if (had && has && where(old, kind) !== where(next, kind)) {
      plan.closeListeners.push(kind);
      plan.openListeners.push(kind);
      plan.changes.push(`listener ${kind} moved (${where(old, kind)} -> ${where(next, kind)})`);
    }
  }

  // Read at each upgrade: a new list applies to the next browser that connects.
  if (old.network.ws && next.network.ws && !same(old.network.ws.allowedOrigins, next.network.ws.allowedOrigins)) {
    plan.changes.push(`network.ws.allowedOrigins: ${JSON.stringify(old.network.ws.allowedOrigins)} -> ${JSON.stringify(next.network.ws.allowedOrigins)}`);
  }

  const before = old.handlers.typeMap;
  const after = next.handlers.typeMap;
  for (const type of Object.keys(before)) {
    if (!(type in after)) {
      plan.stopHandlers.push(type);
      plan.changes.push(`handler ${type} removed`);
    }
  }
  // Where a handler's program gets its informer socket and frame limit from.
  const contextChanged = !same(inEffect(old, "informer"), inEffect(next, "informer")) || old.limits.maxFrameBytes !== next.limits.maxFrameBytes;
  for (const [type, h] of Object.entries(after)) {
    if (!(type in before)) {
      plan.startHandlers.push(h);
      plan.changes.push(`handler ${type} added`);
    } else if (!same(before[type], h) || contextChanged) {
      plan.stopHandlers.push(type);
      plan.startHandlers.push(h);
      plan.changes.push(`handler ${type} restarted (settings changed)`);
    }
  }

  if (!same(old.database, next.database)) {
    plan.reopenAccounts = true;
    plan.changes.push(`account store reopened (${old.database.type} -> ${next.database.type})`);
  }
  for (const [key, value] of Object.entries(next.limits)) {
    const was = old.limits[key as keyof Config["limits"]];
    // A block of limits (loginFailures) is compared and shown as JSON.
    if (!same(was, value)) plan.changes.push(`limits.${key}: ${shown(was)} -> ${shown(value)}`);
  }
  // The inbox limits are read per message; the store itself cannot change under the messages it holds.
  const { inbox: oldInbox, ...oldStore } = old.delivery;
  const { inbox: newInbox, ...newStore } = next.delivery;
  if (!same(oldStore, newStore)) {
    return { ok: false, reasons: ["delivery: the store changed, but it cannot be changed while running (it holds the waiting messages); restart the gateway to apply it"] };
  }
  for (const [key, value] of Object.entries(newInbox)) {
    const was = oldInbox[key as keyof typeof oldInbox];
    if (was !== value) plan.changes.push(`delivery.inbox.${key}: ${was} -> ${value}`);
  }
  if (!same(old.log, next.log)) plan.changes.push(`log: ${old.log.level}/${old.log.format} -> ${next.log.level}/${next.log.format}`);
  if (!same(old.admin, next.admin)) plan.changes.push("admin.info changed");
  // Peers, secrets and timeouts are read per message, so they apply from the next one on.
  if (!same((old as { federation?: unknown }).federation, (next as { federation?: unknown }).federation)) {
    plan.changes.push("federation changed (applies to the next server message)");
  }
  return { ok: true, plan };
}
