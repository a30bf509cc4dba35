/** The control API in-process (app.request) and the Prometheus text format. */
import { describe, expect, test } from "bun:test";
import { createControlApp } from "../../src/control/app.ts";
import { renderMetrics } from "../../src/control/metrics.ts";
import type { ControlActions, ControlView, MetricsSnapshot } from "../../src/control/types.ts";

function snapshot(): MetricsSnapshot {
  return {
    version: "1.2.3",
    runtime: "bun 1",
    uptimeSeconds: 7,
    connections: [{ scope: "client", listener: "tcp4", count: 2 }],
    connectionsOpened: 5,
    closed: new Map([["slow_consumer", 1]]),
    messagesIn: new Map([['we"ird\\type', 3]]),
    messagesDelivered: new Map(),
    reports: new Map([["good", 4]]),
    authFailures: 0,
    loginsHeldBack: new Map([["source", 195]]),
    loginHolds: new Map([["source", 1]]),
    loginsHeldNow: { source: 1, username: 0 },
    loginChecks: { running: 2, waiting: 3 },
    handlerFailures: new Map(),
    handlerLatencyMs: new Map([["chat", { buckets: [1, 0, 2], count: 4, sumMs: 30 }]]),
    latencyBucketsMs: [1, 5, 10],
    handlers: [
      { type: "chat", mode: "persistent", managed: true, state: "up", pid: 1, restarts: 2, lastError: undefined, inFlight: 0 },
      { type: "ext", mode: "per-message", managed: false, state: "external", pid: undefined, restarts: 0, lastError: undefined, inFlight: 0 },
    ],
  };
}

describe("renderMetrics", () => {
  const text = renderMetrics(snapshot());
  const lines = text.trimEnd().split("\n");

  test("every family has HELP and TYPE once, and its samples directly after", () => {
    const seen = new Set<string>();
    let current = "";
    for (const line of lines) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (m) {
        expect(seen.has(m[1]!)).toBe(false);
        seen.add(m[1]!);
        current = m[1]!;
      } else if (!line.startsWith("#")) {
        expect(line.startsWith(current)).toBe(true);
      }
    }
  });

  test("label values are escaped", () => {
    expect(lines).toContain('bester_messages_in_total{type="we\\"ird\\\\type"} 3');
  });

  test("histogram buckets are cumulative and in seconds, ending in +Inf = count", () => {
    expect(lines).toContain('bester_handler_latency_seconds_bucket{type="chat",le="0.001"} 1');
    expect(lines).toContain('bester_handler_latency_seconds_bucket{type="chat",le="0.005"} 1');
    expect(lines).toContain('bester_handler_latency_seconds_bucket{type="chat",le="0.01"} 3');
    expect(lines).toContain('bester_handler_latency_seconds_bucket{type="chat",le="+Inf"} 4');
    expect(lines).toContain('bester_handler_latency_seconds_sum{type="chat"} 0.03');
  });

  test("logins held back, holds, and password checks", () => {
    expect(lines).toContain('bester_logins_held_back_total{by="source"} 195');
    expect(lines).toContain('bester_login_holds_total{by="source"} 1');
    expect(lines).toContain('bester_logins_held{by="source"} 1');
    expect(lines).toContain('bester_logins_held{by="username"} 0');
    expect(lines).toContain('bester_password_checks{state="running"} 2');
    expect(lines).toContain('bester_password_checks{state="waiting"} 3');
  });

  test("slow consumers and handler state", () => {
    expect(lines).toContain("bester_slow_consumer_disconnects_total 1");
    expect(lines).toContain('bester_handler_restarts_total{type="chat"} 2');
    expect(lines).toContain('bester_handler_up{type="ext"} 1');
  });
});

describe("control app in-process", () => {
  const view: ControlView = {
    listeners: () => [],
    clients: () => [],
    handlers: () => [],
    readiness: () => ({ ready: false, reasons: ["listener tcp4 is not bound"] }),
    metrics: snapshot,
    health: () => ({ status: "ok", version: "1.2.3", runtime: "bun 1", uptimeSeconds: 7 }),
  };
  const injected: unknown[] = [];
  const actions: ControlActions = {
    reload: async () => ({ ok: false, errors: ["x: bad"], warnings: [] }),
    disconnect: () => 0,
    inject: (type, users, data) => (injected.push({ type, users, data }), { delivered: users, undelivered: [] }),
    shutdown: () => {},
  };
  const app = createControlApp(view, actions, { token: "tok" });
  const auth = { headers: { authorization: "Bearer tok" } };

  test("/ready answers 503 with reasons", async () => {
    const res = await app.request("/ready", auth);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ready: false, reasons: ["listener tcp4 is not bound"] });
  });

  test("a failed reload is 422 with the errors as details", async () => {
    const res = await app.request("/v1/reload", { method: "POST", ...auth });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).error.details).toEqual(["x: bad"]);
  });

  test("POST /v1/messages takes one username as a string and defaults type and data", async () => {
    const res = await app.request("/v1/messages", { method: "POST", body: JSON.stringify({ to: "bob" }), ...auth });
    expect(await res.json()).toEqual({ type: "control", delivered: ["bob"], undelivered: [] });
    expect(injected.at(-1)).toEqual({ type: "control", users: ["bob"], data: null });
  });

  test("a token of the wrong length is refused like a wrong one", async () => {
    expect((await app.request("/v1/clients", { headers: { authorization: "Bearer t" } })).status).toBe(401);
    expect((await app.request("/v1/clients", { headers: { authorization: "tok" } })).status).toBe(401);
    expect((await app.request("/health")).status).toBe(200);
  });
});
