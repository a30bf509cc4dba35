/**
 * Renders a metrics snapshot in the Prometheus text exposition format 0.0.4.
 * @module
 */
import type { Histogram } from "../server/stats.ts";
import type { MetricsSnapshot } from "./types.ts";

type Labels = Record<string, string>;

/** Label values may hold any text; the format escapes backslash, quote and newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

class Writer {
  lines: string[] = [];
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, l: Labels, value: number): void {
    this.lines.push(`${name}${labels(l)} ${Number.isFinite(value) ? value : 0}`);
  }
  perKey(name: string, type: "counter" | "gauge", help: string, label: string, map: Map<string, number>): void {
    this.family(name, type, help);
    for (const [k, v] of [...map].sort(([a], [b]) => a.localeCompare(b))) this.sample(name, { [label]: k }, v);
  }
}

export function renderMetrics(m: MetricsSnapshot): string {
  const w = new Writer();
  w.family("bester_info", "gauge", "Version and runtime of this gateway (always 1).");
  w.sample("bester_info", { version: m.version, runtime: m.runtime }, 1);
  w.family("bester_uptime_seconds", "gauge", "Seconds since the gateway started.");
  w.sample("bester_uptime_seconds", {}, m.uptimeSeconds);

  w.family("bester_connections", "gauge", "Open connections by scope and listener.");
  for (const c of m.connections) w.sample("bester_connections", { scope: c.scope, listener: c.listener }, c.count);
  w.family("bester_connections_opened_total", "counter", "Connections accepted.");
  w.sample("bester_connections_opened_total", {}, m.connectionsOpened);
  w.perKey("bester_connections_closed_total", "counter", "Connections closed, by reason.", "reason", m.closed);
  w.family("bester_internal_connections_closed_total", "counter", "The gateway's own connections closed (handler links, informer clients, peer deliveries), by kind and reason.");
  for (const c of [...m.internalClosed].sort((a, b) => a.kind.localeCompare(b.kind) || a.reason.localeCompare(b.reason))) {
    w.sample("bester_internal_connections_closed_total", { kind: c.kind, reason: c.reason }, c.count);
  }
  w.family("bester_slow_consumer_disconnects_total", "counter", "Clients closed because their outbound buffer passed limits.maxPendingBytes.");
  w.sample("bester_slow_consumer_disconnects_total", {}, m.closed.get("slow_consumer") ?? 0);
  w.family("bester_frame_errors_total", "counter", "Connections closed for an undecodable frame (size, UTF-8, JSON).");
  w.sample("bester_frame_errors_total", {}, m.closed.get("frame_error") ?? 0);
  w.family("bester_auth_failures_total", "counter", "Logins refused after a check (wrong username or password, store unavailable).");
  w.sample("bester_auth_failures_total", {}, m.authFailures);
  w.family("bester_websocket_origins_refused_total", "counter", "WebSocket upgrades refused (403) because the page's origin is not allowed.");
  w.sample("bester_websocket_origins_refused_total", {}, m.websocketOriginsRefused);
  w.perKey("bester_logins_held_back_total", "counter", "Logins refused unchecked (login_throttled) while their address or username was held back.", "by", m.loginsHeldBack);
  w.perKey("bester_login_holds_total", "counter", "Holds begun after repeated login failures, by what was held back.", "by", m.loginHolds);
  w.family("bester_logins_held", "gauge", "Addresses and usernames held back now.");
  w.sample("bester_logins_held", { by: "source" }, m.loginsHeldNow.source);
  w.sample("bester_logins_held", { by: "username" }, m.loginsHeldNow.username);
  w.family("bester_password_checks", "gauge", "Password checks running, and waiting for their turn.");
  w.sample("bester_password_checks", { state: "running" }, m.loginChecks.running);
  w.sample("bester_password_checks", { state: "waiting" }, m.loginChecks.waiting);

  w.perKey("bester_messages_in_total", "counter", "Client messages received, by type.", "type", m.messagesIn);
  w.perKey("bester_messages_delivered_total", "counter", "Messages written to client sessions, by the type that produced them.", "type", m.messagesDelivered);
  w.perKey("bester_status_reports_total", "counter", "Status reports sent, by status.", "status", m.reports);

  w.perKey("bester_handler_failures_total", "counter", "Handler requests that failed (unreachable, timeout, bad answer).", "type", m.handlerFailures);
  // Each family's samples must stay together, hence two passes.
  w.family("bester_handler_restarts_total", "counter", "Times a supervised handler was restarted.");
  for (const h of m.handlers) w.sample("bester_handler_restarts_total", { type: h.type }, h.restarts);
  w.family("bester_handler_up", "gauge", "1 if the handler is up (external handlers: always 1).");
  for (const h of m.handlers) w.sample("bester_handler_up", { type: h.type }, h.state === "up" || h.state === "external" ? 1 : 0);

  if (m.cluster !== undefined) {
    const c = m.cluster;
    w.family("bester_cluster_nodes", "gauge", "Nodes registered in the cluster at this node's last heartbeat, itself included.");
    w.sample("bester_cluster_nodes", {}, c.nodes);
    w.family("bester_cluster_messages_total", "counter", "Deliveries between nodes: sent (once per node notified) and received from other nodes.");
    w.sample("bester_cluster_messages_total", { direction: "sent" }, c.sent);
    w.sample("bester_cluster_messages_total", { direction: "received" }, c.received);
    w.family("bester_cluster_dead_node_purges_total", "counter", "Nodes this node declared dead and purged.");
    w.sample("bester_cluster_dead_node_purges_total", {}, c.purges);
    w.family("bester_cluster_purged_users_total", "counter", "Users whose presence on a dead node this node removed.");
    w.sample("bester_cluster_purged_users_total", {}, c.purgedUsers);
  }
  if (m.inbox !== undefined) {
    const i = m.inbox;
    w.family("bester_inbox_messages", "gauge", "Messages waiting in inboxes (the delivery store), all users together.");
    w.sample("bester_inbox_messages", {}, i.messages);
    w.family("bester_inbox_queued_total", "counter", "Messages stored for users who were not connected.");
    w.sample("bester_inbox_queued_total", {}, i.queued);
    w.family("bester_inbox_replayed_total", "counter", "Stored messages written to a session at its login.");
    w.sample("bester_inbox_replayed_total", {}, i.replayed);
    w.family("bester_inbox_acked_total", "counter", "Acknowledgements taken from clients.");
    w.sample("bester_inbox_acked_total", {}, i.acked);
    w.family("bester_inbox_expired_total", "counter", "Messages removed for being older than delivery.inbox.maxAgeSeconds.");
    w.sample("bester_inbox_expired_total", {}, i.expired);
    w.perKey("bester_inbox_refused_total", "counter", "Messages the delivery store refused, by code (inbox_full).", "code", i.refused);
    histogram(w, "bester_inbox_store_seconds", "Time the delivery store took to take a message.", {}, i.latencyMs, m.latencyBucketsMs);
  }

  w.family("bester_handler_latency_seconds", "histogram", "Time from writing a request to a handler to reading its answer.");
  for (const [type, h] of [...m.handlerLatencyMs].sort(([a], [b]) => a.localeCompare(b))) {
    samples(w, "bester_handler_latency_seconds", { type }, h, m.latencyBucketsMs);
  }
  return w.lines.join("\n") + "\n";
}

/** One histogram family with one set of labels. */
function histogram(w: Writer, name: string, help: string, l: Labels, h: Histogram, bucketsMs: readonly number[]): void {
  w.family(name, "histogram", help);
  samples(w, name, l, h, bucketsMs);
}

/** A histogram's samples: cumulative buckets in seconds, +Inf, sum, count. */
function samples(w: Writer, name: string, l: Labels, h: Histogram, bucketsMs: readonly number[]): void {
  let cumulative = 0;
  bucketsMs.forEach((le, i) => {
    cumulative += h.buckets[i] ?? 0;
    w.sample(`${name}_bucket`, { ...l, le: String(le / 1000) }, cumulative);
  });
  w.sample(`${name}_bucket`, { ...l, le: "+Inf" }, h.count);
  w.sample(`${name}_sum`, l, h.sumMs / 1000);
  w.sample(`${name}_count`, l, h.count);
}
