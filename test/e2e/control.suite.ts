/**
 * The HTTP control API over real HTTP against a live gateway: every
 * endpoint, live reload with a client connected, auth, graceful shutdown.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, type RunningGateway, startGateway, tempDir } from "../_harness/gateway.ts";
import { scripted } from "../_harness/handlers.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { expectClosed, login, openWire } from "../_harness/wire.ts";


const withControl = (extra: object = {}) => ({
  control: { enabled: true, address: "127.0.0.1", port: 0 },
  ...extra,
});

const msg = (type: string, id: string, data: unknown) => ({ payload: { type, id, data } });

async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as any, res };
}

/** Value of one sample in Prometheus text, or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

export function controlSuite(runtime: RuntimeName) {
  describe(`${runtime}: control API`, () => {
    let gw: RunningGateway;
    let base: string;
    beforeAll(async () => {
      gw = await startGateway(
        runtime,
        withControl({ handlers: { availableTypes: ["script"], typeMap: { script: scripted("script.sock") } } }),
      );
      base = gw.control!;
    });
    afterAll(async () => {
      await gw?.stop();
    });

    test("GET /health and /ready", async () => {
      const health = await getJson(`${base}/health`);
      expect(health.status).toBe(200);
      expect(health.body).toMatchObject({ status: "ok", runtime: expect.stringContaining(runtime === "deno" ? "deno" : "bun") });
      const ready = await getJson(`${base}/ready`);
      expect(ready).toMatchObject({ status: 200, body: { ready: true, reasons: [] } });
    });

    test("GET /v1/listeners, /v1/handlers, /v1/clients", async () => {
      const listeners = await getJson(`${base}/v1/listeners`);
      expect(listeners.body.listeners.map((l: any) => l.kind).sort()).toEqual(["tcp4", "tcp6", "unix"]);
      const handlers = await getJson(`${base}/v1/handlers`);
      expect(handlers.body.handlers).toEqual([
        expect.objectContaining({ type: "script", mode: "per-message", managed: true, state: "up", restarts: 0 }),
      ]);
      expect(typeof handlers.body.handlers[0].pid).toBe("number");
      const a = await login(gw.tcp4, "watcher");
      const b = await login(gw.unix, "watcher");
      const c = await login(gw.tcp6, "watcher");
      const clients = await getJson(`${base}/v1/clients`);
      const watcher = clients.body.clients.find((c: any) => c.username === "watcher");
      expect(watcher.sessions.map((s: any) => s.listener).sort()).toEqual(["tcp4", "tcp6", "unix"]);
      // Each session names its client's own end: address and port as the client sees them.
      const remoteOf = (listener: string) => watcher.sessions.find((s: any) => s.listener === listener).remote;
      expect(remoteOf("tcp4")).toBe(`127.0.0.1:${a.socket.localPort}`);
      expect(remoteOf("tcp6")).toBe(`[::1]:${c.socket.localPort}`);
      expect(remoteOf("unix")).toStartWith("unix:");
      a.close();
      b.close();
      c.close();
    });

    test("GET /metrics counts real traffic", async () => {
      const before = await (await fetch(`${base}/metrics`)).text();
      const alice = await login(gw.tcp4, "metric-alice");
      for (let i = 0; i < 5; i++) alice.send(msg("script", `m${i}`, { do: "deliver", to: ["metric-alice"], body: i }));
      alice.send(msg("nope", "bad1", null));
      for (let i = 0; i < 11; i++) await alice.next();
      const res = await fetch(`${base}/metrics`);
      expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      const after = await res.text();
      const moved = (name: string, labels: string) => (sample(after, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
      expect(moved("bester_messages_in_total", '{type="script"}')).toBe(5);
      expect(moved("bester_messages_delivered_total", '{type="script"}')).toBe(5);
      expect(moved("bester_status_reports_total", '{status="good"}')).toBe(5);
      expect(moved("bester_status_reports_total", '{status="bad"}')).toBe(1);
      expect(moved("bester_handler_latency_seconds_count", '{type="script"}')).toBe(5);
      // One connection per message to a per-message handler, each closed after its answer.
      expect(moved("bester_internal_connections_closed_total", '{kind="handler",reason="exchange_done"}')).toBe(5);
      // A type nobody serves counts under one label, never its own: clients make types up freely.
      expect(moved("bester_messages_in_total", '{type="(unserved)"}')).toBe(1);
      expect(after).not.toContain('type="nope"');
      expect(sample(after, "bester_connections", '{scope="client",listener="tcp4"}')).toBeGreaterThanOrEqual(1);
      expect(sample(after, "bester_handler_up", '{type="script"}')).toBe(1);
      alice.close();
    });

    test("POST /v1/messages delivers to named users and says who got it", async () => {
      const bob = await login(gw.tcp6, "inbox-bob");
      const r = await getJson(`${base}/v1/messages`, {
        method: "POST",
        body: JSON.stringify({ to: ["inbox-bob", "ghost"], type: "notice", data: { text: "maintenance at 5" } }),
      });
      expect(r).toMatchObject({ status: 200, body: { type: "notice", delivered: ["inbox-bob"], undelivered: ["ghost"] } });
      expect(await bob.next()).toEqual({
        header: { messageType: "receivedMessage" },
        payload: { data: { text: "maintenance at 5" }, type: "notice" },
      });
      const invalid = await getJson(`${base}/v1/messages`, { method: "POST", body: JSON.stringify({ to: 5 }) });
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.code).toBe("invalid_request");
      expect(invalid.body.error.message).toContain("to:");
      const notJson = await getJson(`${base}/v1/messages`, { method: "POST", body: "{" });
      expect(notJson.body.error.code).toBe("invalid_json");
      bob.close();
    });

    test("POST /v1/messages counts deliveries under bounded types only", async () => {
      const dora = await login(gw.tcp4, "inject-dora");
      const before = await (await fetch(`${base}/metrics`)).text();
      const inject = async (body: object) => {
        const r = await getJson(`${base}/v1/messages`, { method: "POST", body: JSON.stringify({ to: ["inject-dora"], ...body }) });
        expect(r.body.delivered).toEqual(["inject-dora"]);
        await dora.next();
      };
      await inject({ type: "made-up-1" });
      await inject({ type: "made-up-2" });
      await inject({ data: "the default type" });
      await inject({ type: "script" });
      const after = await (await fetch(`${base}/metrics`)).text();
      const moved = (labels: string) =>
        (sample(after, "bester_messages_delivered_total", labels) ?? 0) - (sample(before, "bester_messages_delivered_total", labels) ?? 0);
      // Types the caller makes up share one label, as a client's do; the default and a handler's type keep theirs.
      expect(moved('{type="(unserved)"}')).toBe(2);
      expect(after).not.toContain('type="made-up-1"');
      expect(moved('{type="control"}')).toBe(1);
      expect(moved('{type="script"}')).toBe(1);
      dora.close();
    });

    test("POST /v1/clients/:username/disconnect", async () => {
      const carol = await login(gw.tcp4, "carol-x");
      const r = await getJson(`${base}/v1/clients/carol-x/disconnect`, { method: "POST" });
      expect(r).toMatchObject({ status: 200, body: { username: "carol-x", disconnected: 1 } });
      const fatal = await carol.next();
      expect(fatal.header).toMatchObject({ messageType: "fatal", error: { code: "disconnected" } });
      await expectClosed(carol);
      const missing = await getJson(`${base}/v1/clients/nobody/disconnect`, { method: "POST" });
      expect(missing).toMatchObject({ status: 404, body: { error: { code: "not_connected" } } });
    });

    test("unknown endpoint: JSON 404", async () => {
      const r = await getJson(`${base}/v2/everything`);
      expect(r).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
    });
  });

  describe(`${runtime}: reload`, () => {
    test("adding a handler type and a listener keeps a connected client working", async () => {
      const gw = await startGateway(
        runtime,
        withControl({
          network: { types: ["tcp4"] },
          handlers: { availableTypes: ["script"], typeMap: { script: scripted("script.sock") } },
        }),
      );
      try {
        const alice = await login(gw.tcp4, "alice");
        alice.send(msg("more", "before", { do: "deliver", to: ["alice"], body: "x" }));
        expect((await alice.next()).header.error.code).toBe("unknown_type");

        const conf = JSON.parse(readFileSync(gw.configPath, "utf8"));
        conf.network.types = ["tcp4", "unix"];
        conf.handlers.availableTypes.push("more");
        conf.handlers.typeMap.more = scripted("more.sock", { mode: "persistent" });
        conf.limits = { maxHandlerHops: 2, maxFrameBytes: 4096 };
        writeFileSync(gw.configPath, JSON.stringify(conf));

        const r = await getJson(`${gw.control}/v1/reload`, { method: "POST" });
        expect(r.status).toBe(200);
        expect(r.body.ok).toBe(true);
        expect(r.body.changes).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^listener unix added/),
            "handler more added",
            "limits.maxHandlerHops: 8 -> 2",
          ]),
        );
        // A session opened after the reload works to the new limits.
        const late = await login(gw.tcp4, "late");
        late.send(msg("dummy", "big", "x".repeat(5000)));
        const fatal = await late.next();
        expect(fatal.header.error.code).toBe("frame_too_large");
        // The same connection, untouched, reaches the new type.
        alice.send(msg("more", "after", { do: "deliver", to: ["alice"], body: "new type" }));
        expect((await alice.next()).payload).toEqual({ data: "new type", type: "more" });
        expect((await alice.next()).payload.id).toBe("after");
        const listening = await gw.waitForLog((rec) => rec.msg === "listening" && rec.listener === "unix");
        (await login({ path: listening.address.slice(5) }, "via-unix")).close();
        alice.close();
      } finally {
        await gw.stop();
      }
    });

    test("an invalid config, or a change that cannot be made live, is refused and nothing changes", async () => {
      const gw = await startGateway(runtime, withControl({ network: { types: ["tcp4"] } }));
      try {
        const alice = await login(gw.tcp4, "alice");
        const good = readFileSync(gw.configPath, "utf8");
        writeFileSync(gw.configPath, JSON.stringify({ ...JSON.parse(good), limits: { maxFrameBytes: "big" } }));
        const bad = await getJson(`${gw.control}/v1/reload`, { method: "POST" });
        expect(bad.status).toBe(422);
        expect(bad.body.error.code).toBe("reload_failed");
        expect(bad.body.error.details).toEqual([expect.stringContaining("limits.maxFrameBytes")]);

        const conf = JSON.parse(good);
        conf.control.port = 1; // the control API cannot move while it answers this very request
        writeFileSync(gw.configPath, JSON.stringify(conf));
        const refused = await getJson(`${gw.control}/v1/reload`, { method: "POST" });
        expect(refused.status).toBe(422);
        expect(refused.body.error.details[0]).toMatch(/^control: changed, but it cannot be changed while running/);

        alice.send(msg("dummy", "alive", null));
        expect((await alice.next()).payload.id).toBe("alive");
        alice.close();
      } finally {
        await gw.stop();
      }
    });

    test("SIGHUP reloads too", async () => {
      const gw = await startGateway(runtime, withControl({ network: { types: ["tcp4"] } }));
      try {
        const conf = JSON.parse(readFileSync(gw.configPath, "utf8"));
        conf.handlers = { availableTypes: ["script"], typeMap: { script: scripted("s.sock") } };
        writeFileSync(gw.configPath, JSON.stringify(conf));
        gw.child.kill("SIGHUP");
        await gw.waitForLog((r) => r.msg === "reloaded" && r.change === "handler script added");
        const alice = await login(gw.tcp4, "alice");
        alice.send(msg("script", "s1", { do: "deliver", to: ["alice"], body: 1 }));
        expect((await alice.next()).payload.type).toBe("script");
        alice.close();
      } finally {
        await gw.stop();
      }
    });
  });

  describe(`${runtime}: control auth and shutdown`, () => {
    test("with a token, everything but /health needs it", async () => {
      const gw = await startGateway(runtime, withControl({ control: { enabled: true, address: "127.0.0.1", port: 0, token: "t0ken-1234" } }));
      try {
        expect((await fetch(`${gw.control}/health`)).status).toBe(200);
        const denied = await getJson(`${gw.control}/v1/clients`);
        expect(denied.status).toBe(401);
        expect(denied.body.error.code).toBe("unauthorized");
        expect(denied.res.headers.get("www-authenticate")).toContain("Bearer");
        expect((await fetch(`${gw.control}/metrics`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
        const ok = await fetch(`${gw.control}/v1/clients`, { headers: { authorization: "Bearer t0ken-1234" } });
        expect(ok.status).toBe(200);
      } finally {
        await gw.stop();
      }
    });

    test("a non-loopback control address without a token is refused before anything listens", async () => {
      const dir = tempDir();
      const file = join(dir, "open.conf");
      writeFileSync(file, JSON.stringify({ network: { types: ["unix"], unix: { address: join(dir, "s.sock") } }, control: { address: "0.0.0.0" } }));
      const { code, stderr } = await runCli(runtime, ["check", file]);
      expect(code).toBe(1);
      expect(stderr).toContain("control.token: required because control.address 0.0.0.0 is not loopback");
    });

    test("/ready is 503 with the reason while a handler is down", async () => {
      const gw = await startGateway(
        runtime,
        withControl({
          handlers: { availableTypes: ["broken"], typeMap: { broken: { handlerBinary: "/bin/false", unixDomainSocketPath: "b.sock" } } },
        }),
      );
      try {
        const r = await getJson(`${gw.control}/ready`);
        expect(r.status).toBe(503);
        expect(r.body.ready).toBe(false);
        expect(r.body.reasons.join("\n")).toMatch(/handler broken is (starting|backoff)/);
      } finally {
        await gw.stop();
      }
    });

    test("POST /v1/shutdown: a message in flight finishes, then clients are told, then exit 0", async () => {
      const gw = await startGateway(
        runtime,
        withControl({ handlers: { availableTypes: ["script"], typeMap: { script: scripted("script.sock") } } }),
      );
      const alice = await login(gw.tcp4, "alice");
      alice.send(msg("script", "slow", { do: "slow", ms: 600, to: ["alice"], body: "made it" }));
      await new Promise((r) => setTimeout(r, 100));
      const r = await getJson(`${gw.control}/v1/shutdown`, { method: "POST" });
      expect(r).toMatchObject({ status: 202, body: { status: "shutting down" } });
      expect((await alice.next()).payload.data).toBe("made it");
      expect((await alice.next()).payload).toEqual({ id: "slow" });
      const fatal = await alice.next();
      expect(fatal.header.error.code).toBe("shutting_down");
      expect(await gw.exited).toBe(0);
      // nothing listens any more
      await expect(openWire(gw.tcp4, 1000)).rejects.toThrow();
      await gw.stop();
    });
  });
}
