/** The control API in-process (app.request) and the Prometheus text format. */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { createControlApp } from "../../src/control/app.ts";
import { renderMetrics } from "../../src/control/metrics.ts";
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML } from "../../src/control/status-page.ts";
import type { ControlActions, ControlView, MetricsSnapshot } from "../../src/control/types.ts";

function snapshot(): MetricsSnapshot {
  return {
    version: "1.2.3",
    runtime: "bun 1",
    uptimeSeconds: 7,
    connections: [{ scope: "client", listener: "tcp4", count: 2 }],
    connectionsOpened: 5,
    closed: new Map([["slow_consumer", 1]]),
    internalClosed: [
      { kind: "informer", reason: "slow_consumer", count: 1 },
      { kind: "handler", reason: "timeout", count: 2 },
    ],
    messagesIn: new Map([['we"ird\\type', 3]]),
    messagesDelivered: new Map(),
    reports: new Map([["good", 4]]),
    authFailures: 0,
    websocketOriginsRefused: 4,
    loginsHeldBack: new Map([["source", 195]]),
    loginHolds: new Map([["source", 1]]),
    loginsHeldNow: { source: 1, username: 0 },
    loginChecks: { running: 2, waiting: 3 },
    handlerFailures: new Map(),
    handlerLatencyMs: new Map([["chat", { buckets: [1, 0, 2], count: 4, sumMs: 30 }]]),
    latencyBucketsMs: [1, 5, 10],
    cluster: { nodes: 3, sent: 40, received: 38, purges: 1, purgedUsers: 5 },
    inbox: {
      messages: 12,
      queued: 30,
      replayed: 17,
      acked: 9,
      expired: 1,
      refused: new Map([["inbox_full", 2]]),
      latencyMs: { buckets: [3, 0, 0], count: 3, sumMs: 1.5 },
    },
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

  test("the gateway's own connections closed, by kind and reason, in a stable order", () => {
    const at = (l: string) => lines.indexOf(l);
    expect(at('bester_internal_connections_closed_total{kind="handler",reason="timeout"} 2')).toBeGreaterThan(0);
    expect(at('bester_internal_connections_closed_total{kind="informer",reason="slow_consumer"} 1')).toBe(
      at('bester_internal_connections_closed_total{kind="handler",reason="timeout"} 2') + 1,
    );
  });

  test("the inbox families, with a histogram of the store's time", () => {
    expect(lines).toContain("bester_inbox_messages 12");
    expect(lines).toContain('bester_inbox_refused_total{code="inbox_full"} 2');
    expect(lines).toContain('bester_inbox_store_seconds_bucket{le="0.001"} 3');
    expect(lines).toContain('bester_inbox_store_seconds_bucket{le="+Inf"} 3');
    expect(lines).toContain("bester_inbox_store_seconds_count 3");
  });

  test("the cluster families: nodes, messages between nodes by direction, dead-node purges", () => {
    expect(lines).toContain("bester_cluster_nodes 3");
    expect(lines).toContain('bester_cluster_messages_total{direction="sent"} 40');
    expect(lines).toContain('bester_cluster_messages_total{direction="received"} 38');
    expect(lines).toContain("bester_cluster_dead_node_purges_total 1");
    expect(lines).toContain("bester_cluster_purged_users_total 5");
  });

  test("WebSocket upgrades refused for their origin", () => {
    expect(lines).toContain("bester_websocket_origins_refused_total 4");
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
    cluster: async () => undefined,
    handlers: () => [],
    peers: () => ({ name: "a.example", peers: [{ name: "b.example", address: "b.example:2220", auth: "secret", tls: true, connected: 0 }], allowOriginal: [] }),
    rates: () => ({ intervalSeconds: 2, windowSeconds: 600, counters: ["messagesIn"] as any, points: [] }),
    readiness: () => ({ ready: false, reasons: ["listener tcp4 is not bound"] }),
    metrics: async () => snapshot(),
    health: () => ({ status: "ok", version: "1.2.3", runtime: "bun 1", uptimeSeconds: 7 }),
    inbox: async (username) => (username === "amy" ? { username, depth: 2, bytes: 10, oldest: 1, lastSeq: 5, acked: 3 } : undefined),
    inboxes: async () => ({ store: "sqlite", messages: 2, inboxes: [] }),
  };
  const injected: unknown[] = [];
  const actions: ControlActions = {
    reload: async () => ({ ok: false, errors: ["x: bad"], warnings: [] }),
    disconnect: () => 0,
    inject: async (type, users, data) => (injected.push({ type, users, data }), { delivered: users, undelivered: [] }),
    shutdown: () => {},
    clearInbox: async () => 2,
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

  test("an action from another site's page is refused before anything happens; reads and programs are not affected", async () => {
    const post = (headers: Record<string, string>) =>
      app.request("/v1/messages", { method: "POST", body: JSON.stringify({ to: "bob" }), headers: { authorization: "Bearer tok", ...headers } });
    const count = injected.length;
    const foreign: Record<string, string>[] = [{ origin: "http://evil.example" }, { "sec-fetch-site": "cross-site" }, { "sec-fetch-site": "same-site" }, { origin: "null" }];
    for (const headers of foreign) {
      const res = await post(headers);
      expect(res.status).toBe(403);
      const body = (await res.json()) as any;
      expect(body.error.code).toBe("cross_site");
      expect(body.error.message).toStartWith("refused: ");
    }
    expect(injected.length).toBe(count);
    // Its own page (same origin) and programs (neither header) act as before.
    expect((await post({ origin: "http://localhost", "sec-fetch-site": "same-origin" })).status).toBe(200);
    expect((await post({})).status).toBe(200);
    expect(injected.length).toBe(count + 2);
    // Another site may not read the answers anyway (no CORS), so a GET is not refused.
    expect((await app.request("/v1/clients", { headers: { origin: "http://evil.example", "sec-fetch-site": "cross-site", ...auth.headers } })).status).toBe(200);
  });

  test("the status page is served without the token, and is the same file whatever the gateway holds", async () => {
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await res.text()).toBe(STATUS_PAGE_HTML);
    // Its data needs the token like every other endpoint.
    for (const path of ["/v1/peers", "/v1/rates"]) {
      expect((await app.request(path)).status).toBe(401);
      expect((await app.request(path, auth)).status).toBe(200);
    }
    expect(await (await app.request("/v1/peers", auth)).json()).toMatchObject({ name: "a.example", peers: [{ name: "b.example", auth: "secret" }] });
  });
});

describe("status page", () => {
  const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;
  const blocks = (tag: string) => [...STATUS_PAGE_HTML.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
  const policy = new Map(
    STATUS_PAGE_HEADERS["Content-Security-Policy"]!.split("; ").map((d) => [d.slice(0, d.indexOf(" ")), d.slice(d.indexOf(" ") + 1)]),
  );

  test("the policy lets exactly the page's own inline script and style run", () => {
    expect(blocks("script").length).toBe(1);
    expect(blocks("style").length).toBe(1);
    expect(policy.get("script-src")).toBe(sha256(blocks("script")[0]!));
    expect(policy.get("style-src")).toBe(sha256(blocks("style")[0]!));
    expect(policy.get("default-src")).toBe("'none'");
    expect(policy.get("connect-src")).toBe("'self'");
  });

  test("no script or style outside those blocks, and nothing that turns text into markup", () => {
    // An inline handler attribute or a script of another form would be refused by the policy anyway; say so here first.
    expect(STATUS_PAGE_HTML).not.toMatch(/<script\s+src|\son[a-z]+=|style="/i);
    for (const sink of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]) {
      expect(STATUS_PAGE_HTML).not.toContain(sink);
    }
  });

  test("a few tens of KB at most", () => {
    expect(new TextEncoder().encode(STATUS_PAGE_HTML).length).toBeLessThan(40 * 1024);
  });
});
