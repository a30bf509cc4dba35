/**
 * Where a `sendClients` ends (PROTOCOL.md §4, §9): a message for named
 * users, written to every session each of them has open, and, with a
 * delivery store, kept for users who are not connected and for sessions
 * that acknowledge. The one seam every delivery to users passes (a
 * handler's command, the control API's messages), and the one place that
 * knows the store: logins replay from it, acknowledgements go to it.
 *
 * The usual delivery, to users whose sessions do not acknowledge, is
 * written at once and allocates nothing; one that needs the store is
 * answered later, in order (PIPELINED), since the store answers its calls
 * in the order they were made.
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import { INBOX_EXPIRY_SWEEP_MS, REPLAY_PAGE_MESSAGES } from "../config/defaults.ts";
import type { DeliveryStore, InboxInfo, StoreFailure } from "../delivery/store.ts";
import type { RedisDeliveryStore } from "../delivery/redis.ts";
import type { Notification } from "../cluster/message.ts";
import type { Logger } from "../log/logger.ts";
import { encodeJsonFrame } from "../protocol/frame.ts";
import { DELIVERY_HEAD, deliveryParts, deliveryTail, type ErrorInfo, ErrorCodes } from "../protocol/reports.ts";
import { bad, GOOD, good, type Outcome, PIPELINED, type Pipelined, type Settle } from "./outcome.ts";
import type { ClientRegistry } from "./registry.ts";
import type { Session } from "./session.ts";
import type { Stats, TypeStats } from "./stats.ts";

export interface DeliveryDeps {
  registry: ClientRegistry;
  /** Whether a user who is not connected has an inbox (an account, or with the open store: has logged in). */
  knows(user: string): Promise<boolean>;
  /** Read when expiring, so a reload applies. */
  maxAgeSeconds(): number;
  stats: Stats;
  log: Logger;
}

/** What became of one recipient whose delivery needed the store. */
type Reached =
  | { name: string; state: "delivered" | "queued" | "offline" }
  | { name: string; state: "failed"; error: ErrorInfo };

/** What #writeToSessions reports: some session took the message; one that does not acknowledge did. */
const TOOK_ANY = 1;
const TOOK_PLAIN = 2;

/** Who a delivery did not reach, for the control API. */
export interface Unreached {
  offline: string[];
  failed: string[];
}

/** What delivery needs of the gateway's cluster node (docs/CLUSTER.md). */
export interface ClusterRouting {
  readonly name: string;
  /** What other nodes get between the seq and the data. */
  notification(type: string, data: string | undefined): string;
  /** A delivery went out to `nodes` other nodes. */
  sent(nodes: number): void;
}

export class Delivery {
  #sweeper: ReturnType<typeof setInterval> | undefined;
  /** Set in a cluster: every delivery goes through the store's ROUTE script (the Redis store). */
  #cluster: { node: ClusterRouting; store: RedisDeliveryStore } | undefined;
  /** Undefined: `delivery.store` is `none`, the original behaviour (or the gateway has not started). */
  #store: DeliveryStore | undefined;

  constructor(private readonly deps: DeliveryDeps) {}

  get store(): DeliveryStore | undefined {
    return this.#store;
  }

  /** Starts keeping messages in `store`, and sweeping it for expired ones. */
  open(store: DeliveryStore | undefined): void {
    this.#store = store;
    if (store === undefined || this.#sweeper !== undefined) return;
    // At least twice per age limit, so nothing outlives it by more than half of it.
    this.#sweeper = setInterval(() => void this.sweep(), Math.min(INBOX_EXPIRY_SWEEP_MS, this.deps.maxAgeSeconds() * 500));
    this.#sweeper.unref?.();
    void this.sweep();
  }

  /** From now on deliveries reach the user's sessions on every node of the cluster, through `store`. */
  joinCluster(node: ClusterRouting, store: RedisDeliveryStore): void {
    this.#cluster = { node, store };
  }

  /** Stops the sweep and closes the store; what it has taken is kept. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    const store = this.#store;
    this.#store = undefined;
    await store?.close();
  }

  /**
   * Delivers the message of `type` with data `dataJson` (undefined: none)
   * to every session of each named user (each user once, however often
   * named), counting each write in `counters`. The sender's outcome, or
   * PIPELINED when the store is involved: then `settle` hears it.
   */
  deliver(names: string[], type: string, dataJson: string | undefined, counters: TypeStats, settle: Settle): Outcome | Pipelined {
    if (this.#cluster !== undefined) return this.#deliverInCluster(this.#cluster, names, type, dataJson, counters, settle);
    // The usual case, one user with one session that does not acknowledge, needs no closure and no list.
    if (names.length === 1) {
      const found = this.deps.registry.lookup(names[0]!);
      if (found !== undefined && !(found instanceof Set) && found.plain) {
        const sent =
          dataJson === undefined
            ? found.sendJson(deliveryParts(type, undefined)[0])
            : found.sendJson(DELIVERY_HEAD, dataJson, deliveryTail(type));
        if (!sent) return bad(notWritten(names));
        counters.delivered++;
        return GOOD;
      }
    }
    const registry = this.deps.registry;
    const store = this.#store;
    let offline: string[] | undefined;
    let failed: string[] | undefined;
    let later: Promise<Reached>[] | undefined;
    let frame: Uint8Array | undefined;
    for (const name of names.length === 1 ? names : new Set(names)) {
      const found = registry.lookup(name);
      if (found === undefined) {
        if (store === undefined) (offline ??= []).push(name);
        else (later ??= []).push(this.#queue(store, name, type, dataJson, counters));
        continue;
      }
      const sessions = found instanceof Set ? [...found] : [found];
      if (store !== undefined && sessions.some((s) => s.ack)) {
        // Stored before it is written; kept until acknowledged, unless a session that does not acknowledge takes it now.
        const keep = sessions.every((s) => s.ack);
        (later ??= []).push(this.#storeThenWrite(store, name, type, dataJson, keep, counters));
        continue;
      }
      let any = false;
      for (const s of sessions) {
        let sent: boolean;
        if (!s.plain) sent = s.deliver(type, dataJson, undefined);
        else if (dataJson === undefined) sent = s.sendJson(deliveryParts(type, undefined)[0]);
        else sent = s.sendBytes((frame ??= encodeJsonFrame(DELIVERY_HEAD + dataJson + deliveryTail(type))));
        if (sent) {
          counters.delivered++;
          any = true;
        }
      }
      if (!any) (failed ??= []).push(name);
    }
    if (later === undefined) {
      if (failed !== undefined) return bad(notWritten(failed));
      // Extension: the original silently ignored users who were not connected; say who they were.
      return offline === undefined ? GOOD : good({ undelivered: offline });
    }
    const known: Reached[] | undefined =
      offline === undefined && failed === undefined
        ? undefined
        : [
            ...(offline ?? []).map((name): Reached => ({ name, state: "offline" })),
            ...(failed ?? []).map((name): Reached => ({ name, state: "failed", error: notWritten([name]) })),
          ];
    return settleWhenReached(settle, later, known);
  }

  /**
   * In a cluster: this node's sessions that do not acknowledge are written
   * at once; then one ROUTE script per user decides, on the cluster's
   * presence, whether to store (nobody connected, or a session that
   * acknowledges somewhere) and whether to notify other nodes; this node's
   * acknowledging sessions get the message with its seq after that.
   */
  #deliverInCluster(
    cluster: { node: ClusterRouting; store: RedisDeliveryStore },
    names: string[],
    type: string,
    dataJson: string | undefined,
    counters: TypeStats,
    settle: Settle,
  ): Pipelined {
    const notification = cluster.node.notification(type, dataJson);
    const unique = names.length === 1 ? names : [...new Set(names)];
    return settleWhenReached(
      settle,
      unique.map((name) => this.#routeFromHere(cluster, name, type, dataJson, counters, notification)),
    );
  }

  /** Writes to this node's sessions of `name` that do not acknowledge, then routes through the cluster. */
  #routeFromHere(
    cluster: { node: ClusterRouting; store: RedisDeliveryStore },
    name: string,
    type: string,
    dataJson: string | undefined,
    counters: TypeStats,
    notification: string,
  ): Promise<Reached> {
    let plain = false;
    let ack = false;
    for (const s of this.deps.registry.sessionsOf(name) ?? []) {
      if (s.ack) ack = true;
      else if (s.deliver(type, dataJson, undefined)) {
        counters.delivered++;
        plain = true;
      }
    }
    return this.#route(cluster, name, type, dataJson, { plain, ack }, notification, counters);
  }

  async #route(
    cluster: { node: ClusterRouting; store: RedisDeliveryStore },
    name: string,
    type: string,
    dataJson: string | undefined,
    here: { plain: boolean; ack: boolean },
    notification: string,
    counters: TypeStats,
  ): Promise<Reached> {
    const started = performance.now();
    let r = await cluster.store.route(name, type, dataJson, cluster.node.name, here, true, notification);
    if (r.ok && r.unknown) {
      // Nobody has a session and the store never saw the user: an account may still exist.
      const known = await this.#knows(name);
      if (known !== true) return known === false ? { name, state: "offline" } : known;
      r = await cluster.store.route(name, type, dataJson, cluster.node.name, here, false, notification);
    }
    if (!r.ok) {
      // Redis is away: this node's own sessions took it, which is all a node alone can do (docs/CLUSTER.md).
      if (here.plain && r.code === "store_unavailable") return { name, state: "delivered" };
      this.deps.stats.inbox.refused(r.code);
      // The sessions here that took it have it; the sender hears what the store refused.
      return { name, state: "failed", error: { code: r.code, message: r.message } };
    }
    if (r.unknown) return { name, state: "offline" };
    if (r.seq > 0) this.deps.stats.inbox.storeLatency(performance.now() - started);
    if (r.others > 0) cluster.node.sent(r.others);
    let written = here.plain || r.others > 0;
    if (here.ack) {
      for (const s of this.deps.registry.sessionsOf(name) ?? []) {
        if (!s.ack || !s.deliver(type, dataJson, r.seq > 0 ? r.seq : undefined)) continue;
        counters.delivered++;
        written = true;
      }
    }
    if (!written && r.kept) this.deps.stats.inbox.queued++;
    return { name, state: written ? "delivered" : r.kept ? "queued" : "delivered" };
  }

  /** A message another node routed here: written to this node's sessions of `user`, with the seq to those that acknowledge. */
  deliverRouted(user: string, n: Notification): number {
    let written = 0;
    for (const s of this.deps.registry.sessionsOf(user) ?? []) {
      if (s.deliver(n.type, n.data, s.ack && n.seq > 0 ? n.seq : undefined)) written++;
    }
    return written;
  }

  /** Who `deliver` did not reach, for the control API (which waits for the store). */
  async deliverNow(names: string[], type: string, dataJson: string | undefined, counters: TypeStats): Promise<Unreached> {
    const outcome = await new Promise<Outcome>((resolve) => {
      const now = this.deliver(names, type, dataJson, counters, { settle: resolve });
      if (now !== PIPELINED) resolve(now);
    });
    const header = (outcome.kind === "good" || outcome.kind === "bad" ? outcome.header : undefined) ?? {};
    const offline = (header["undelivered"] as string[] | undefined) ?? [];
    const queued = new Set((header["queued"] as string[] | undefined) ?? []);
    if (outcome.kind !== "bad") return { offline, failed: [] };
    const reached = new Set([...queued, ...offline]);
    const failed = (header["failed"] as string[] | undefined) ?? names.filter((n) => !reached.has(n));
    return { offline, failed };
  }

  /** Whether an account `name` may exist (the account store, else the delivery store); what to report when the check itself failed. */
  async #knows(name: string): Promise<boolean | Reached> {
    try {
      return await this.deps.knows(name);
    } catch (err) {
      return unavailable(name, err);
    }
  }

  /** A user with no session: into the inbox if the user is known; then written, should a session have appeared since. */
  async #queue(store: DeliveryStore, name: string, type: string, dataJson: string | undefined, counters: TypeStats): Promise<Reached> {
    const known = await this.#knows(name);
    if (known !== true) return known === false ? { name, state: "offline" } : known;
    const reached = await this.#storeThenWrite(store, name, type, dataJson, true, counters);
    if (reached.state === "delivered" || reached.state === "queued") this.deps.stats.inbox.queued++;
    return reached;
  }

  /** Enters the message into the user's stream, then writes it to the sessions the user has now. */
  async #storeThenWrite(
    store: DeliveryStore,
    name: string,
    type: string,
    dataJson: string | undefined,
    keep: boolean,
    counters: TypeStats,
  ): Promise<Reached> {
    let stored: { ok: true; seq: number } | StoreFailure;
    const started = performance.now();
    try {
      stored = await store.append(name, type, dataJson, keep);
    } catch (err) {
      return unavailable(name, err);
    }
    this.deps.stats.inbox.storeLatency(performance.now() - started);
    if (!stored.ok) {
      this.deps.stats.inbox.refused(stored.code);
      return { name, state: "failed", error: { code: stored.code, message: stored.message } };
    }
    const took = this.#writeToSessions(name, type, dataJson, stored.seq, counters);
    // Written to a session that does not acknowledge: done (PROTOCOL.md §9).
    if (keep && (took & TOOK_PLAIN) !== 0) void store.drop(name, stored.seq).catch(() => {});
    return took === 0 ? { name, state: "queued" } : { name, state: "delivered" };
  }

  /** Writes a stored message to every session `name` has now: TOOK_ANY if any took it, plus TOOK_PLAIN if one that does not acknowledge did. */
  #writeToSessions(name: string, type: string, dataJson: string | undefined, seq: number, counters: TypeStats): number {
    const found = this.deps.registry.lookup(name);
    if (found === undefined) return 0;
    if (!(found instanceof Set)) {
      if (!found.deliver(type, dataJson, seq)) return 0;
      counters.delivered++;
      return found.ack ? TOOK_ANY : TOOK_ANY | TOOK_PLAIN;
    }
    let took = 0;
    for (const s of found) {
      if (!s.deliver(type, dataJson, seq)) continue;
      counters.delivered++;
      took |= s.ack ? TOOK_ANY : TOOK_ANY | TOOK_PLAIN;
    }
    return took;
  }

  /**
   * A client of `user` logged in: the store remembers the user and says
   * whether its stream is new. Undefined without a store, or when it cannot
   * answer (the session then gets the original delivery, and is told so by
   * the absence of `delivery` in its login report).
   */
  async login(user: string, ack: boolean): Promise<{ ack: boolean; reset: boolean; acked: number } | undefined> {
    const store = this.#store;
    if (store === undefined) return undefined;
    try {
      const r = await store.login(user, ack);
      return { ack, reset: r.reset, acked: r.acked };
    } catch (err) {
      this.deps.log.warn("delivery store unavailable at a login: original delivery for this session", { user, error: (err as Error).message });
      return undefined;
    }
  }

  /**
   * Before any live message, what waits for the session's user: above what
   * it acknowledged, with seqs, for a session that acknowledges (kept until
   * acknowledged); everything, once, for one that does not (done once
   * written). A page at a time. Live messages that arrive meanwhile are held
   * by the session and written after, without repeating a replayed seq.
   */
  async replay(session: Session, acked: number): Promise<void> {
    const store = this.#store;
    const user = session.username!;
    let after = session.ack ? acked : 0;
    try {
      if (store === undefined) return;
      for (;;) {
        const page = await store.read(user, after, REPLAY_PAGE_MESSAGES);
        if (session.closing) return;
        for (const m of page) {
          session.deliver(m.type, m.data, m.seq, true);
          after = m.seq;
        }
        this.deps.stats.inbox.replayed += page.length;
        if (!session.ack && page.length > 0) await store.drop(user, after);
        if (page.length < REPLAY_PAGE_MESSAGES) return;
      }
    } catch (err) {
      this.deps.log.warn("replay stopped: the delivery store did not answer", { user, error: (err as Error).message });
    } finally {
      const stored = session.endReplay(after);
      // Held stored messages that went to a session that does not acknowledge are done too.
      if (store !== undefined && !session.ack && stored > after) void store.drop(user, stored).catch(() => {});
    }
  }

  /** The `ack` builtin: every stored message of the session's user up to `seq` is done. */
  async ack(session: Session, seq: unknown): Promise<Outcome> {
    const store = this.#store;
    if (store === undefined || !session.ack) {
      return bad({ code: ErrorCodes.badAck, message: 'this session did not ask for acknowledged delivery (header.delivery: {"ack": true} in its first frame)' });
    }
    if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) {
      return bad({ code: ErrorCodes.badAck, message: `args.seq: expected a positive integer, got ${JSON.stringify(seq) ?? "nothing"}` });
    }
    try {
      const r = await store.ack(session.username!, seq);
      if (!r.ok) return bad({ code: r.code, message: r.message });
      this.deps.stats.inbox.acked++;
      return GOOD;
    } catch (err) {
      return bad(unavailableError(err));
    }
  }

  inbox(user: string): Promise<InboxInfo | undefined> {
    return this.#store?.inbox(user) ?? Promise.resolve(undefined);
  }

  clear(user: string): Promise<number> {
    return this.#store?.clear(user) ?? Promise.resolve(0);
  }

  /** Removes messages older than delivery.inbox.maxAgeSeconds, saying so. */
  async sweep(): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    const maxAge = this.deps.maxAgeSeconds();
    try {
      const expired = await store.expire(Date.now() - maxAge * 1000);
      for (const { user, count } of expired) {
        this.deps.log.info("inbox messages expired", { user, count, maxAgeSeconds: maxAge });
        this.deps.stats.inbox.expired += count;
      }
    } catch (err) {
      this.deps.log.warn("inbox expiry sweep failed", { error: (err as Error).message });
    }
  }
}

/**
 * Settles a message once what became of each recipient is known (`known`:
 * those settled already). One recipient, the usual case, is settled from its
 * own answer, without lists to gather.
 */
function settleWhenReached(settle: Settle, later: Promise<Reached>[], known?: Reached[]): Pipelined {
  const internal = (err: Error) => settle.settle(bad({ code: ErrorCodes.internal, message: err.message }));
  if (later.length === 1 && known === undefined) {
    later[0]!.then((reached) => settle.settle(reached.state === "delivered" ? GOOD : outcomeOf([reached])), internal);
  } else {
    Promise.all(later).then((reached) => settle.settle(outcomeOf(known === undefined ? reached : [...known, ...reached])), internal);
  }
  return PIPELINED;
}

function notWritten(users: string[]): ErrorInfo {
  return { code: ErrorCodes.deliveryFailed, message: `could not write to the sessions of: ${users.join(", ")}` };
}

function unavailableError(err: unknown): ErrorInfo {
  return { code: ErrorCodes.storeUnavailable, message: `delivery store unavailable: ${(err as Error).message ?? err}` };
}

function unavailable(name: string, err: unknown): Reached {
  return { name, state: "failed", error: unavailableError(err) };
}

/** The sender's report once every recipient is settled: good, naming who waits and who is unknown; else bad, naming why per user. */
function outcomeOf(reached: Reached[]): Outcome {
  const queued = reached.filter((r) => r.state === "queued").map((r) => r.name);
  const offline = reached.filter((r) => r.state === "offline").map((r) => r.name);
  const failures = reached.filter((r): r is Extract<Reached, { state: "failed" }> => r.state === "failed");
  const header: Record<string, unknown> = {};
  if (queued.length > 0) header["queued"] = queued;
  if (offline.length > 0) header["undelivered"] = offline;
  if (failures.length === 0) return good(Object.keys(header).length > 0 ? header : undefined);
  header["failed"] = failures.map((f) => f.name);
  const message = failures.length === 1 ? failures[0]!.error.message : failures.map((f) => `${f.name}: ${f.error.message}`).join("; ");
  return bad({ code: failures[0]!.error.code, message }, header);
}
