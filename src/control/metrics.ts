/**
 * Renders a metrics snapshot in the Prometheus text exposition format 0.0.4.
 * @module
 */
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
  w.family("bester_slow_consumer_disconnects_total", "counter", "Clients closed because their outbound buffer passed limits.maxPendingBytes.");
  w.sample("bester_slow_consumer_disconnects_total", {}, m.closed.get("slow_consumer") ?? 0);
  w.family("bester_frame_errors_total", "counter", "Connections closed for an undecodable frame (size, UTF-8, JSON).");
  w.sample("bester_frame_errors_total", {}, m.closed.get("frame_error") ?? 0);
  w.family("bester_auth_failures_total", "counter", "Logins refused after a check (wrong username or password, store unavailable).");
  w.sample("bester_auth_failures_total", {}, m.authFailures);
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

  w.family("bester_handler_latency_seconds", "histogram", "Time from writing a request to a handler to reading its answer.");
  for (const [type, h] of [...m.handlerLatencyMs].sort(([a], [b]) => a.localeCompare(b))) {
    let cumulative = 0;
    m.latencyBucketsMs.forEach((le, i) => {
      cumulative += h.buckets[i] ?? 0;
      w.sample("bester_handler_latency_seconds_bucket", { type, le: String(le / 1000) }, cumulative);
    });
    w.sample("bester_handler_latency_seconds_bucket", { type, le: "+Inf" }, h.count);
    w.sample("bester_handler_latency_seconds_sum", { type }, h.sumMs / 1000);
    w.sample("bester_handler_latency_seconds_count", { type }, h.count);
  }
  return w.lines.join("\n") + "\n";
}
