/**
 * The control API's view of a running gateway: snapshots built on demand
 * from the gateway's state, never references the API could mutate.
 * @module
 */
import { RATE_HISTORY_SAMPLES, RATE_SAMPLE_INTERVAL_MS } from "../config/defaults.ts";
import { formatEndpoint } from "../runtime/types.ts";
import { ClosedReason } from "../server/close-reason.ts";
import type { Gateway } from "../server/gateway.ts";
import { LATENCY_BUCKETS_MS, type Stats } from "../server/stats.ts";
import { VERSION } from "../version.ts";
import { type Counters, RATE_COUNTERS, RateHistory, sampleRates } from "./rate-history.ts";
import type { ClientInfo, ControlView, PeersInfo, Readiness } from "./types.ts";

/** Closes that mean something went wrong with the connection (not a goodbye, an operator or a shutdown). */
const ERROR_CLOSES: ReadonlySet<string> = new Set([
  ClosedReason.frameError,
  ClosedReason.malformed,
  ClosedReason.badScope,
  ClosedReason.authFailed,
  ClosedReason.authTimeout,
  ClosedReason.slowConsumer,
  ClosedReason.socketError,
]);

function sum(values: Iterable<number>): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}

/** The cumulative counters the rates are made of. */
function rateCounters(s: Stats): Counters {
  let connectionErrors = 0;
  for (const [reason, n] of s.closed) if (ERROR_CLOSES.has(reason)) connectionErrors += n;
  return {
    messagesIn: sum(s.messagesIn.values()),
    delivered: sum(s.messagesDelivered.values()),
    badReports: s.badReports,
    handlerFailures: sum(s.handlerFailures.values()),
    authFailures: s.authFailures,
    connectionsOpened: s.connectionsOpened,
    connectionErrors,
  };
}

/** The view lives as long as the control API, and samples the rates from its start until the gateway stops. */
export function gatewayView(gateway: Gateway): ControlView {
  const runtime = `${gateway.runtime.name} ${gateway.runtime.version}`;
  const uptime = () => Math.round((Date.now() - gateway.stats.startedAt) / 1000);
  const history = new RateHistory(RATE_HISTORY_SAMPLES);
  sampleRates(history, () => rateCounters(gateway.stats), RATE_SAMPLE_INTERVAL_MS, () => gateway.stopping);
  return {
    health: () => ({ status: "ok", version: VERSION, runtime, uptimeSeconds: uptime() }),
    listeners: () => gateway.listeners.map((l) => ({ kind: l.kind, address: formatEndpoint(l.listener.address), tls: l.tls !== undefined })),
    clients(): ClientInfo[] {
      return gateway.registry.usernames().map((username) => ({
        username,
        sessions: [...(gateway.registry.sessionsOf(username) ?? [])].map((s) => ({
          connection: s.id,
          listener: s.listener,
          remote: formatEndpoint(s.conn.remote),
          connectedAt: new Date(s.openedAt).toISOString(),
          messagesIn: s.messagesIn,
          inFlight: s.inFlight,
          pendingBytes: s.conn.pendingBytes,
        })),
      }));
    },
    handlers: () => gateway.handlers.status(),
    peers(): PeersInfo {
      const f = gateway.config.federation;
      const connected = new Map<string, number>();
      for (const s of gateway.sessions) if (s.kind === "server" && s.peer !== undefined) connected.set(s.peer, (connected.get(s.peer) ?? 0) + 1);
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
      points: history.points(),
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
      return { ready: reasons.length === 0, reasons };
    },
    metrics() {
      const s = gateway.stats;
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
        messagesIn: s.messagesIn,
        messagesDelivered: s.messagesDelivered,
        reports: s.reports,
        authFailures: s.authFailures,
        handlerFailures: s.handlerFailures,
        handlerLatencyMs: s.handlerLatencyMs,
        latencyBucketsMs: LATENCY_BUCKETS_MS,
        handlers: gateway.handlers.status(),
      };
    },
  };
}
