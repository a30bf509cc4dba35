/**
 * What a running gateway shows of itself: listeners, clients, handlers,
 * readiness and the metrics, as snapshots built when asked for. The control
 * API renders these; it never reads the gateway's state itself.
 * @module
 */
import type { InboxInfo } from "../delivery/store.ts";
import type { HandlerStatus } from "../handlers/host.ts";
import { formatEndpoint } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { RATE_HISTORY_SAMPLES, RATE_SAMPLE_INTERVAL_MS } from "../config/defaults.ts";
import type { Gateway } from "./gateway.ts";
import type { NodeInfo } from "../cluster/node.ts";
import { RATE_COUNTERS, type RateCounter, type RatePoint } from "./rate-history.ts";
import { type Histogram, LATENCY_BUCKETS_MS } from "./stats.ts";

export interface ListenerInfo {
  kind: "tcp4" | "tcp6" | "unix" | "ws";
  address: string;
  /** Speaks TLS (network.<kind>.tls). */
  tls: boolean;
}

export interface SessionInfo {
  connection: number;
  listener: string;
  remote: string;
  connectedAt: string;
  messagesIn: number;
  inFlight: number;
  pendingBytes: number;
}

export interface ClientInfo {
  username: string;
  /** This gateway's sessions of the user. */
  sessions: SessionInfo[];
  /** In a cluster: every node holding sessions of the user, and how many (docs/CLUSTER.md). */
  nodes?: Array<{ node: string; sessions: number }>;
}

/** GET /v1/cluster: the nodes of the cluster this gateway is one of. */
export interface ClusterInfo {
  /** This gateway's node name. */
  node: string;
  ready: boolean;
  detail: string;
  heartbeatMs: number;
  deadAfterMs: number;
  nodes: NodeInfo[];
}

/** A configured federation peer as the API shows it: never its secret. */
export interface PeerInfo {
  name: string;
  /** Where it is dialled; null for a peer that only dials us. */
  address: string | null;
  /** How it proves itself: the shared secret, or none (an original Bester server). */
  auth: "secret" | "original";
  tls: boolean;
  /** Server-scope connections from it open now. */
  connected: number;
}

export interface PeersInfo {
  /** This server's federation.name, if set. */
  name: string | null;
  peers: PeerInfo[];
  /** IP addresses original servers may deliver from. */
  allowOriginal: string[];
}

/** GET /v1/rates: per-second rates over the last minutes, oldest first. */
export interface RatesInfo {
  intervalSeconds: number;
  windowSeconds: number;
  counters: readonly RateCounter[];
  points: RatePoint[];
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/** GET /v1/inboxes: the delivery store at a glance. */
export interface InboxesInfo {
  /** `none` when the gateway keeps no messages (delivery.store). */
  store: "sqlite" | "redis" | "none";
  /** Messages waiting, all users together. */
  messages: number;
  /** The users with the most messages waiting, most first. */
  inboxes: InboxInfo[];
}

/** Everything /metrics renders, read at scrape time. */
export interface MetricsSnapshot {
  version: string;
  runtime: string;
  uptimeSeconds: number;
  /** Open connections by scope ("pending" before the first frame) and listener. */
  connections: Array<{ scope: string; listener: string; count: number }>;
  connectionsOpened: number;
  closed: Map<string, number>;
  /** Closes of handler links, informer clients and peer deliveries. */
  internalClosed: Array<{ kind: string; reason: string; count: number }>;
  messagesIn: Map<string, number>;
  messagesDelivered: Map<string, number>;
  reports: Map<string, number>;
  authFailures: number;
  websocketOriginsRefused: number;
  /** Logins refused unchecked while their address or username was held back, by "source" / "username". */
  loginsHeldBack: Map<string, number>;
  /** Holds begun, by "source" / "username". */
  loginHolds: Map<string, number>;
  /** Addresses and usernames held back now. */
  loginsHeldNow: { source: number; username: number };
  /** Password checks running and waiting for their turn. */
  loginChecks: { running: number; waiting: number };
  handlerFailures: Map<string, number>;
  handlerLatencyMs: Map<string, Histogram>;
  latencyBucketsMs: readonly number[];
  handlers: HandlerStatus[];
  /** Cluster counters; undefined when the gateway runs alone. */
  cluster: { nodes: number; sent: number; received: number; purges: number; purgedUsers: number } | undefined;
  /** The delivery store's counts; undefined when the gateway keeps none. */
  inbox: { messages: number; queued: number; replayed: number; acked: number; expired: number; refused: Map<string, number>; latencyMs: Histogram } | undefined;
}

/** Snapshots of a running gateway, built when asked for: never references a reader could mutate. */
export interface GatewayMonitor {
  listeners(): ListenerInfo[];
  /** In a cluster, every node's users (asked of Redis, hence a promise). */
  clients(): ClientInfo[] | Promise<ClientInfo[]>;
  /** Undefined when the gateway is no node of a cluster. */
  cluster(): Promise<ClusterInfo | undefined>;
  handlers(): HandlerStatus[];
  peers(): PeersInfo;
  rates(): RatesInfo;
  readiness(): Readiness;
  /** Asks the delivery store for its count, hence a promise. */
  metrics(): Promise<MetricsSnapshot>;
  /** A user's inbox; undefined for a user the store has never seen, or without a store. */
  inbox(username: string): Promise<InboxInfo | undefined>;
  inboxes(): Promise<InboxesInfo>;
  health(): { status: "ok"; version: string; runtime: string; uptimeSeconds: number };
}

/** Inboxes GET /v1/inboxes lists: the fullest, enough for a page to show where messages pile up. */
const INBOXES_LISTED = 20;

/** The monitor of `gateway`. */
export function monitorOf(gateway: Gateway): GatewayMonitor {
  const runtime = `${gateway.runtime.name} ${gateway.runtime.version}`;
  const uptime = () => Math.round((Date.now() - gateway.stats.startedAt) / 1000);
  return {
    health: () => ({ status: "ok", version: VERSION, runtime, uptimeSeconds: uptime() }),
    listeners: () => gateway.listeners.map((l) => ({ kind: l.kind, address: formatEndpoint(l.listener.address), tls: l.tls !== undefined })),
    async cluster(): Promise<ClusterInfo | undefined> {
      const node = gateway.cluster;
      if (node === undefined) return undefined;
      const c = gateway.config.cluster;
      const health = node.health();
      return { node: node.name, ready: health.ok, detail: health.detail, heartbeatMs: c.heartbeatMs, deadAfterMs: c.deadAfterMs, nodes: await node.nodes() };
    },
    clients(): ClientInfo[] | Promise<ClientInfo[]> {
      const here = localClients(gateway);
      const node = gateway.cluster;
      if (node === undefined) return here;
      return node.clients().then((everywhere) => {
        const byUser = new Map(here.map((c) => [c.username, c]));
        return [...everywhere]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([username, nodes]) => ({ username, sessions: byUser.get(username)?.sessions ?? [], nodes }));
      });
    },
    handlers: () => gateway.handlers.status(),
    peers(): PeersInfo {
      const f = gateway.config.federation;
      const connected = new Map<string, number>();
      for (const s of gateway.sessions) if (s.server !== undefined) connected.set(s.server.peer, (connected.get(s.server.peer) ?? 0) + 1);
      return {
        name: f.name ?? null,
        peers: Object.values(f.peers).map((p) => ({
          name: p.name,
          address: p.address ?? null,
          auth: p.original ? "original" : "secret",
          tls: p.tls,
          connected: connected.get(p.name) ?? 0,
        })),
        allowOriginal: [...f.allowOriginal],
      };
    },
    rates: () => ({
      intervalSeconds: RATE_SAMPLE_INTERVAL_MS / 1000,
      windowSeconds: ((RATE_HISTORY_SAMPLES - 1) * RATE_SAMPLE_INTERVAL_MS) / 1000,
      counters: RATE_COUNTERS,
      points: gateway.rates.points(),
    }),
    readiness(): Readiness {
      const reasons: string[] = [];
      if (gateway.stopping) reasons.push("the gateway is shutting down");
      const bound = new Set(gateway.listeners.map((l) => l.kind));
      for (const kind of gateway.config.network.types) if (!bound.has(kind)) reasons.push(`listener ${kind} is not bound`);
      for (const h of gateway.handlers.status()) {
        if (h.state !== "up" && h.state !== "external") {
          reasons.push(`handler ${h.type} is ${h.state}` + (h.lastError ? `: ${h.lastError}` : ""));
        }
      }
      const health = gateway.accounts?.health();
      if (!health) reasons.push("the account store is not open");
      else if (!health.ok) reasons.push(`account store: ${health.detail}`);
      const delivery = gateway.delivery.store?.health();
      if (delivery !== undefined && !delivery.ok) reasons.push(`delivery store: ${delivery.detail}`);
      const cluster = gateway.cluster?.health();
      if (cluster !== undefined && !cluster.ok) reasons.push(cluster.detail);
      return { ready: reasons.length === 0, reasons };
    },
    async metrics() {
      const s = gateway.stats;
      const store = gateway.delivery.store;
      let stored = 0;
      try {
        stored = (await store?.depth()) ?? 0;
      } catch {
        // The store cannot answer: readiness says so; the gauge shows nothing waiting rather than failing the scrape.
      }
      const groups = new Map<string, { scope: string; listener: string; count: number }>();
      for (const session of gateway.sessions) {
        const key = `${session.kind}\0${session.listener}`;
        const g = groups.get(key) ?? { scope: session.kind, listener: session.listener, count: 0 };
        g.count++;
        groups.set(key, g);
      }
      return {
        version: VERSION,
        runtime,
        uptimeSeconds: uptime(),
        connections: [...groups.values()],
        connectionsOpened: s.connectionsOpened,
        closed: s.closed,
        internalClosed: [...s.internalClosed].map(([key, count]) => {
          const [kind, reason] = key.split("\0") as [string, string];
          return { kind, reason, count };
        }),
        messagesIn: s.messagesIn,
        messagesDelivered: s.messagesDelivered,
        reports: s.reports,
        authFailures: s.authFailures,
        websocketOriginsRefused: s.websocketOriginsRefused,
        loginsHeldBack: s.loginsHeldBack,
        loginHolds: s.loginHolds,
        loginsHeldNow: gateway.logins.throttle.heldNow(),
        loginChecks: { running: gateway.logins.queue.running, waiting: gateway.logins.queue.waiting },
        handlerFailures: s.handlerFailures,
        handlerLatencyMs: s.handlerLatencyMs,
        latencyBucketsMs: LATENCY_BUCKETS_MS,
        handlers: gateway.handlers.status(),
        cluster:
          gateway.cluster === undefined
            ? undefined
            : { nodes: gateway.cluster.nodeCount, ...gateway.cluster.counters },
        inbox:
          gateway.delivery.store === undefined
            ? undefined
            : {
                messages: stored,
                queued: s.inbox.queued,
                replayed: s.inbox.replayed,
                acked: s.inbox.acked,
                expired: s.inbox.expired,
                refused: s.inbox.refusedBy,
                latencyMs: s.inbox.latency,
              },
      };
    },
    inbox: (username) => gateway.delivery.inbox(username),
    async inboxes(): Promise<InboxesInfo> {
      const store = gateway.delivery.store;
      if (store === undefined) return { store: "none", messages: 0, inboxes: [] };
      return { store: store.kind, messages: await store.depth(), inboxes: await store.largest(INBOXES_LISTED) };
    },
  };
}

/** This gateway's own clients and their sessions. */
function localClients(gateway: Gateway): ClientInfo[] {
  return gateway.registry.usernames().map((username) => ({
    username,
    sessions: [...(gateway.registry.sessionsOf(username) ?? [])].map((s) => ({
      connection: s.id,
      listener: s.listener,
      remote: formatEndpoint(s.remote),
      connectedAt: new Date(s.openedAt).toISOString(),
      messagesIn: s.messagesIn,
      inFlight: s.inFlight,
      pendingBytes: s.pendingBytes,
    })),
  }));
}
