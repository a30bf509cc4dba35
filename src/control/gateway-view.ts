/**
 * The control API's view of a running gateway: snapshots built on demand
 * from the gateway's state, never references the API could mutate.
 * @module
 */
import { formatEndpoint } from "../runtime/types.ts";
import type { Gateway } from "../server/gateway.ts";
import { LATENCY_BUCKETS_MS } from "../server/stats.ts";
import { VERSION } from "../version.ts";
import type { ClientInfo, ControlView, Readiness } from "./types.ts";

export function gatewayView(gateway: Gateway): ControlView {
  const runtime = `${gateway.runtime.name} ${gateway.runtime.version}`;
  const uptime = () => Math.round((Date.now() - gateway.stats.startedAt) / 1000);
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
        loginsHeldBack: s.loginsHeldBack,
        loginHolds: s.loginHolds,
        loginsHeldNow: gateway.logins.throttle.heldNow(),
        loginChecks: { running: gateway.logins.queue.running, waiting: gateway.logins.queue.waiting },
        handlerFailures: s.handlerFailures,
        handlerLatencyMs: s.handlerLatencyMs,
        latencyBucketsMs: LATENCY_BUCKETS_MS,
        handlers: gateway.handlers.status(),
      };
    },
  };
}
