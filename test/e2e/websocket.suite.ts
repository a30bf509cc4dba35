/**
 * The WebSocket listener (PROTOCOL.md §10) end to end, without a browser:
 * a raw WebSocket client (its own codec, test/_harness/ws-wire.ts), the
 * client SDK over `url`, and raw TCP clients beside them. The same session
 * rules as on TCP (frames, limits, fatal errors, slow consumers), told with
 * close codes; the origin check; the port's pages; reload, TLS, shutdown.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connectClient } from "../../src/sdk/client.ts";
import { deepMerge, runCli, type RunningGateway, startGateway, tempDir } from "../_harness/gateway.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { makeTestCertificate } from "../_harness/tls.ts";
import { login } from "../_harness/wire.ts";
import { loginWs, openWs, UpgradeRefused } from "../_harness/ws-wire.ts";

const MAX_FRAME = 4096;
const LISTED = "https://app.example.com";

const chatHandler = {
  handlers: {
    availableTypes: ["chat"],
    typeMap: { chat: { bundled: "chat", unixDomainSocketPath: "chat.sock", mode: "persistent", envelope: true } },
  },
  informer: { enabled: true },
};

const withWs = (extra: object = {}) =>
  deepMerge(
    {
      network: { types: ["tcp4", "unix", "ws"], ws: { port: 0, allowedOrigins: [LISTED] } },
      ...chatHandler,
      control: { enabled: true, address: "127.0.0.1", port: 0 },
      limits: { maxFrameBytes: MAX_FRAME, maxPendingBytes: 64 * 1024 },
    },
    extra,
  );

const dummy = (id: string) => ({ payload: { type: "dummy", id, data: null } });

export function webSocketSuite(runtime: RuntimeName) {
  describe(`${runtime}: WebSocket listener`, () => {
    let gw: RunningGateway;
    let port: number;
    beforeAll(async () => {
      gw = await startGateway(runtime, withWs());
      port = Number(new URL(gw.ws!).port);
    });
    afterAll(async () => {
      await gw?.stop();
    });

    test("logs its URL and its chat page; a client logs in; whoami, /v1/listeners and the metrics name the listener ws", async () => {
      expect(gw.ws).toBe(`ws://127.0.0.1:${port}/bester`);
      expect(gw.chat).toBe(`http://127.0.0.1:${port}/chat`);
      const ws = await loginWs(gw.ws!, "wendy");
      ws.send({ payload: { type: "builtin", id: "w", data: { command: { type: "whoami" } } } });
      expect((await ws.next()).payload.data).toMatchObject({ username: "wendy", listener: "ws" });
      ws.send(dummy("d"));
      expect(await ws.next()).toEqual({ header: { status: "0" }, payload: { data: null, type: "dummy", id: "d" } });

      const listeners = (await (await fetch(`${gw.control}/v1/listeners`)).json()) as any;
      expect(listeners.listeners).toContainEqual({ kind: "ws", address: `127.0.0.1:${port}`, tls: false });
      const metrics = await (await fetch(`${gw.control}/metrics`)).text();
      expect(metrics).toContain('bester_connections{scope="client",listener="ws"} 1');
      ws.close();
      expect((await ws.closed).code).toBe(1000);
    });

    test("a client over WebSocket (the SDK) and one over TCP chat both ways; who is online names both", async () => {
      const web = await connectClient({ url: gw.ws!, username: "wanda", password: "pw" });
      const tcp = await login(gw.tcp4, "terry");
      expect(await web.send("chat", { to: "terry", body: "hello from a WebSocket" })).toEqual({ id: "m-1", status: "good" });
      expect((await tcp.next()).payload).toEqual({ type: "chat", data: { from: "wanda", body: "hello from a WebSocket" } });
      tcp.send({ payload: { type: "chat", id: "c1", data: { to: ["wanda"], body: "hello from TCP, ünïcode ✓" } } });
      const inbox = web.messages();
      expect((await inbox.next()).value).toEqual({ type: "chat", data: { from: "terry", body: "hello from TCP, ünïcode ✓" } });
      await web.send("chat", { who: true });
      expect((await inbox.next()).value).toEqual({ type: "chat", data: { online: ["terry", "wanda"] } });
      // `bester send` takes the URL too.
      const sent = await runCli(runtime, ["send", "-u", "wim", "-p", "pw", "-c", gw.ws!, "chat", '{"to":"wanda","body":"from the command line"}']);
      expect(sent).toMatchObject({ code: 0, stdout: '{"id":"m-1","status":"good"}\n' });
      expect((await inbox.next()).value).toEqual({ type: "chat", data: { from: "wim", body: "from the command line" } });
      expect(await web.close()).toEqual({ by: "client", code: 1000 });
      tcp.close();
    });

    test("a message over limits.maxFrameBytes gets the fatal frame frame_too_large, then close code 1009", async () => {
      const ws = await loginWs(gw.ws!, "big-bill");
      ws.send({ payload: { type: "dummy", id: "big", data: "x".repeat(MAX_FRAME + 100) } });
      const fatal = await ws.next();
      expect(fatal.header).toMatchObject({ status: "bad", messageType: "fatal", error: { code: "frame_too_large" } });
      expect(fatal.header.error.message).toContain(`${MAX_FRAME}`);
      expect((await ws.closed).code).toBe(1009);
      const closed = await gw.waitForLog((r) => r.msg === "connection closed" && r.user === "big-bill");
      expect(closed.reason).toBe("frame_error");
    });

    test("a message over twice the limit is cut with 1009 before it is read whole", async () => {
      const ws = await loginWs(gw.ws!, "huge-hal");
      ws.sendText(JSON.stringify({ payload: { type: "dummy", id: "huge", data: "x".repeat(3 * MAX_FRAME) } }));
      const close = await ws.closed;
      expect(close.code).toBe(1009);
      expect(ws.inbox).toEqual([]);
    });

    test("bad frames get their fatal frame and close code 1008: not JSON, a binary message not UTF-8, a malformed message, a bad scope", async () => {
      const notJson = await openWs(gw.ws!);
      notJson.sendText("{oops");
      expect((await notJson.next()).header.error.code).toBe("invalid_json");
      expect((await notJson.closed).code).toBe(1008);

      const notUtf8 = await loginWs(gw.ws!, "bin-bob");
      notUtf8.sendBinary(new Uint8Array([0x22, 0xff, 0xfe, 0x22]));
      expect((await notUtf8.next()).header.error.code).toBe("invalid_utf8");
      expect((await notUtf8.closed).code).toBe(1008);

      // A binary message that is good UTF-8 JSON is a frame like any other.
      const binary = await loginWs(gw.ws!, "bin-ben");
      binary.sendBinary(new TextEncoder().encode(JSON.stringify(dummy("as-binary"))));
      expect((await binary.next()).payload.id).toBe("as-binary");
      binary.send({ payload: { type: 7, id: "m" } });
      expect((await binary.next()).header).toMatchObject({ messageType: "fatal", error: { code: "malformed_message" } });
      expect((await binary.closed).code).toBe(1008);

      const scope = await openWs(gw.ws!);
      scope.send({ header: { scope: "galaxy" }, payload: dummy("s").payload });
      expect((await scope.next()).header.error.code).toBe("bad_scope");
      expect((await scope.closed).code).toBe(1008);

      // The listener serves on.
      const after = await loginWs(gw.ws!, "after-ann");
      after.send({ payload: { type: "builtin", id: "c", data: { command: { type: "close" } } } });
      expect((await after.closed).code).toBe(1000);
    });

    test("a WebSocket that stops reading is cut as a slow consumer; others carry on", async () => {
      const slow = await loginWs(gw.ws!, "slow-sam");
      slow.pause();
      const sender = await connectClient({ target: gw.tcp4 as { host: string; port: number }, username: "fast-fay", password: "pw" });
      const body = "y".repeat(2000);
      let cut: any;
      // Bounded: far more than the limit, the runtime's mark and the sockets' buffers hold together.
      for (let round = 0; round < 100 && cut === undefined; round++) {
        await Promise.all(Array.from({ length: 50 }, () => sender.send("chat", { to: "slow-sam", body })));
        cut = gw.records().find((r) => r.msg === "connection closed" && r.user === "slow-sam");
      }
      expect(cut).toMatchObject({ reason: "slow_consumer" });
      expect(cut.detail).toMatch(/^\d+ bytes pending, limit 65536$/);
      const ok = await loginWs(gw.ws!, "next-nat");
      ok.send(dummy("n"));
      expect((await ok.next()).payload.id).toBe("n");
      ok.close();
      await sender.close();
      slow.socket.destroy();
    }, 60_000);

    test("origins: none, the listener's own and a listed one are taken; another is refused with 403 and logged; a loopback listener's own pages only under loopback names", async () => {
      for (const origin of [undefined, `http://127.0.0.1:${port}`, `http://localhost:${port}`, LISTED]) {
        const ws = await openWs(gw.ws!, origin === undefined ? {} : { origin, host: origin.startsWith(`http://localhost`) ? `localhost:${port}` : undefined });
        ws.close();
      }
      const refused = await openWs(gw.ws!, { origin: "https://evil.example" }).catch((e) => e);
      expect(refused).toBeInstanceOf(UpgradeRefused);
      expect(refused.status).toBe(403);
      expect(refused.body).toBe(`origin "https://evil.example" is not allowed: not this listener's own pages, and not in network.ws.allowedOrigins\n`);
      const logged = await gw.waitForLog((r) => r.msg === "websocket refused" && r.origin === "https://evil.example");
      expect(logged.level).toBe("warn");
      expect(logged.remote).toMatch(/^127\.0\.0\.1:\d+$/);

      // A page of a name pointed at 127.0.0.1 (DNS rebinding) says it is its own host: not taken on loopback.
      const rebound = await openWs(gw.ws!, { origin: `http://rebind.example:${port}`, host: `rebind.example:${port}` }).catch((e) => e);
      expect(rebound).toBeInstanceOf(UpgradeRefused);
      expect(rebound.body).toContain("this listener is on loopback, and its own pages are served under localhost, 127.0.0.1 or [::1] only");
    });

    test("its HTTP side: the chat page and the browser SDK with their headers, / to /chat, 426 on the upgrade path, 404 elsewhere", async () => {
      const base = `http://127.0.0.1:${port}`;
      const page = await fetch(`${base}/chat`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
      const html = await page.text();
      expect(html).toContain('<meta name="bester-websocket-path" content="/bester">');
      const sdk = await fetch(`${base}/bester-client.js`);
      expect(sdk.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
      const js = await sdk.text();
      expect(js).toContain("export {");
      expect(js).not.toMatch(/from\s*["'](node|bun):/);
      expect(js).toBe(readFileSync(join(import.meta.dir, "../../src/web/bester-client.js"), "utf8"));
      const root = await fetch(`${base}/`, { redirect: "manual" });
      expect([root.status, root.headers.get("location")]).toEqual([302, "/chat"]);
      const plain = await fetch(`${base}/bester`);
      expect(plain.status).toBe(426);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/chat`, { method: "POST" })).status).toBe(405);
    });
  });

  describe(`${runtime}: WebSocket listener, reload, TLS and shutdown`, () => {
    test("reload: a ws listener is added, its allowedOrigins change at once, and removed while its clients stay", async () => {
      const gw = await startGateway(runtime, deepMerge(withWs(), { network: { types: ["tcp4"] } }));
      try {
        const config = JSON.parse(readFileSync(gw.configPath, "utf8"));
        const reload = async (network: object) => {
          writeFileSync(gw.configPath, JSON.stringify(deepMerge(config, { network })));
          const r = await fetch(`${gw.control}/v1/reload`, { method: "POST" });
          return (await r.json()) as any;
        };
        const added = await reload({ types: ["tcp4", "ws"], ws: { port: 0, allowedOrigins: [] } });
        expect(added.changes).toContainEqual(expect.stringMatching(/^listener ws added \(ws:\/\/127\.0\.0\.1:0\/bester\)$/));
        const listening = await gw.waitForLog((r) => r.msg === "listening" && r.listener === "ws");
        const url: string = listening.url;
        const stays = await loginWs(url, "stays-stan");
        expect(await openWs(url, { origin: LISTED }).catch((e) => e.status)).toBe(403);

        const listed = await reload({ types: ["tcp4", "ws"], ws: { port: 0, allowedOrigins: [LISTED] } });
        expect(listed.changes).toEqual([`network.ws.allowedOrigins: [] -> ["${LISTED}"]`]);
        (await openWs(url, { origin: LISTED })).close();

        const removed = await reload({ types: ["tcp4"] });
        expect(removed.changes).toEqual([expect.stringMatching(/^listener ws removed/)]);
        // No new WebSocket (Deno's server answers 503 until its last one is gone), but the open one serves on.
        await expect(openWs(url)).rejects.toThrow();
        stays.send(dummy("still"));
        expect((await stays.next()).payload.id).toBe("still");
        stays.close();
      } finally {
        await gw.stop();
      }
    });

    test("wss: a listener with tls speaks only TLS; a client that trusts its CA logs in", async () => {
      const dir = tempDir();
      const cert = makeTestCertificate(dir);
      const gw = await startGateway(runtime, withWs({ network: { ws: { tls: { certFile: cert.cert, keyFile: cert.key } } } }));
      try {
        expect(gw.ws).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/bester$/);
        expect(gw.chat).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/chat$/);
        const ws = await loginWs(gw.ws!, "tls-tom", { ca: readFileSync(cert.ca, "utf8") });
        ws.send(dummy("over-tls"));
        expect((await ws.next()).payload.id).toBe("over-tls");
        ws.close();
        await expect(openWs(gw.ws!.replace("wss:", "ws:"), { timeoutMs: 2000 })).rejects.toThrow();
        await expect(openWs(gw.ws!, { ca: readFileSync(makeTestCertificate(dir, "stranger").ca, "utf8") })).rejects.toThrow();
      } finally {
        await gw.stop();
      }
    });

    test("shutdown: a WebSocket client gets the shutting_down fatal frame, then close code 1001", async () => {
      const gw = await startGateway(runtime, withWs());
      const ws = await loginWs(gw.ws!, "last-lou");
      const stopped = gw.stop();
      const fatal = await ws.next(10_000);
      expect(fatal.header).toMatchObject({ messageType: "fatal", error: { code: "shutting_down" } });
      expect((await ws.closed).code).toBe(1001);
      expect(await stopped).toBe(0);
    });
  });
}
