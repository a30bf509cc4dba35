/**
 * Counters the gateway keeps about itself, for logs now and for the control
 * API's metrics. The hot path bumps plain number fields; the maps the metrics
 * read are built when they are read.
 * @module
 */
import type { HoldKind } from "../accounts/login-gate.ts";
import type { ClosedReason } from "../connection/close-reason.ts";

/** Upper bounds (ms) of the handler latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] as const;

/**
 * The type under which messages of a type the gateway does not serve are
 * counted: clients choose types freely, and a counter per made-up type would
 * grow without bound (in memory and in the metrics).
 */
export const UNSERVED_TYPE = "(unserved)";

/** The gateway's connections that are not client or server sessions. */
export type InternalKind = "handler" | "informer" | "peer";

export interface Histogram {
  buckets: number[];
  count: number;
  sumMs: number;
}

/** The counters of one message type, kept together: a message finds them with one lookup. */
export class TypeStats {
  messagesIn = 0;
  delivered = 0;
  handlerFailures = 0;
  /** Handler types only: made by the first answer or failure. */
  latency: Histogram | undefined;

  handlerLatency(ms: number): void {
    observe((this.latency ??= { buckets: LATENCY_BUCKETS_MS.map(() => 0), count: 0, sumMs: 0 }), ms);
  }
}

function observe(h: Histogram, ms: number): void {
  h.count++;
  h.sumMs += ms;
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
    if (ms <= LATENCY_BUCKETS_MS[i]!) {
      h.buckets[i]!++;
      break;
    }
  }
}

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** What the delivery store did (PROTOCOL.md §9), for the metrics. */
export class InboxStats {
  /** Messages stored for users who were not connected. */
  queued = 0;
  /** Stored messages written to a session at its login. */
  replayed = 0;
  /** Acknowledgements taken. */
  acked = 0;
  /** Messages removed for their age. */
  expired = 0;
  /** Messages the store refused, by code (inbox_full). */
  readonly refusedBy = new Map<string, number>();
  /** Time the store took to take a message. */
  readonly latency: Histogram = { buckets: LATENCY_BUCKETS_MS.map(() => 0), count: 0, sumMs: 0 };

  refused(code: string): void {
    bump(this.refusedBy, code);
  }

  storeLatency(ms: number): void {
    observe(this.latency, ms);
  }
}

export class Stats {
  readonly startedAt = Date.now();
  readonly #types = new Map<string, TypeStats>();
  readonly closed = new Map<ClosedReason, number>();
  /** Closes of the gateway's other connections (handler links, informer clients, peer deliveries), by kind and reason. */
  readonly internalClosed = new Map<`${InternalKind}\0${ClosedReason}`, number>();
  readonly inbox = new InboxStats();
  goodReports = 0;
  badReports = 0;
  authFailures = 0;
  /** WebSocket upgrades refused before the upgrade: a browser page of an origin not allowed. */
  websocketOriginsRefused = 0;
  /** Logins refused unchecked because their address or username was held back, by which. */
  readonly loginsHeldBack = new Map<HoldKind, number>();
  /** Holds begun, by what was held back. */
  readonly loginHolds = new Map<HoldKind, number>();
  connectionsOpened = 0;

  /** The counters of `type`, made on first use (see UNSERVED_TYPE for types nobody serves). */
  forType(type: string): TypeStats {
    let t = this.#types.get(type);
    if (t === undefined) this.#types.set(type, (t = new TypeStats()));
    return t;
  }

  report(status: "good" | "bad"): void {
    if (status === "good") this.goodReports++;
    else this.badReports++;
  }

  loginHeldBack(by: HoldKind): void {
    bump(this.loginsHeldBack, by);
  }

  loginHold(by: HoldKind): void {
    bump(this.loginHolds, by);
  }

  connectionClosed(reason: ClosedReason): void {
    bump(this.closed, reason);
  }

  internalConnectionClosed(kind: InternalKind, reason: ClosedReason): void {
    bump(this.internalClosed, `${kind}\0${reason}`);
  }

  get reports(): Map<"good" | "bad", number> {
    const m = new Map<"good" | "bad", number>();
    if (this.goodReports > 0) m.set("good", this.goodReports);
    if (this.badReports > 0) m.set("bad", this.badReports);
    return m;
  }

  get messagesIn(): Map<string, number> {
    return this.#view((t) => t.messagesIn);
  }

  get messagesDelivered(): Map<string, number> {
    return this.#view((t) => t.delivered);
  }

  get handlerFailures(): Map<string, number> {
    return this.#view((t) => t.handlerFailures);
  }

  get handlerLatencyMs(): Map<string, Histogram> {
    const m = new Map<string, Histogram>();
    for (const [type, t] of this.#types) if (t.latency !== undefined) m.set(type, t.latency);
    return m;
  }

  /** One counter of every type, leaving out types where it is zero (as the maps did before a first count). */
  #view(count: (t: TypeStats) => number): Map<string, number> {
    const m = new Map<string, number>();
    for (const [type, t] of this.#types) if (count(t) > 0) m.set(type, count(t));
    return m;
  }
}
