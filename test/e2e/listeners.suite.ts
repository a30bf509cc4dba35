/**
 * The listener path end to end: every listener kind answers `dummy` and the
 * built-ins; bad input closes only the connection that sent it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { type ClientTarget, connectClient, formatTarget } from "../../src/sdk/client.ts";
import { runCli, type RunningGateway, startGateway, tempDir } from "../_harness/gateway.ts";
import { makeTestCertificate } from "../_harness/tls.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { authFrame, expectClosed, frame, frameBytes, frameText, login, openWire, type Target } from "../_harness/wire.ts";

async function dummyRoundTrip(target: Target, user: string) {
  const wire = await login(target, user);
  wire.send({ payload: { type: "dummy", id: "d-1", data: null } });
  expect(await wire.next()).toEqual({ header: { status: "0" }, payload: { data: null, type: "dummy", id: "d-1" } });
  wire.close();
}

/** This process's hard limit on open files, from /proc/self/limits (Linux). */
function hardOpenFileLimit(): number | undefined {
  const line = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return line ? Number(line[1]) : undefined;
}

export function listenerSuite(runtime: RuntimeName) {
  describe(`${runtime}: listeners`, () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGateway(runtime, { limits: { maxFrameBytes: 1024, authTimeoutMs: 1500 } });
    });
    afterAll(async () => {
      await gw?.stop();
    });

    for (const kind of ["tcp4", "tcp6", "unix"] as const) {
      test(`${kind}: authenticate, then dummy round trip`, async () => {
        await dummyRoundTrip(gw[kind], `user-${kind}`);
      });
    }

    test("auth_special is good and the first frame's dummy is not answered", async () => {
      const wire = await openWire(gw.tcp4);
      wire.send(authFrame("alice"));
      expect(await wire.next()).toEqual({
        header: { status: "good", messageType: "statusReport" },
        payload: { id: "auth_special" },
      });
      wire.send({ payload: { type: "dummy", id: "after", data: 1 } });
      expect((await wire.next()).payload.id).toBe("after");
      wire.close();
    });

    test("a later frame may omit header and data", async () => {
      const wire = await login(gw.tcp4, "bob");
      wire.send({ payload: { type: "dummy", id: "x" } });
      expect((await wire.next()).payload).toEqual({ data: null, type: "dummy", id: "x" });
      wire.close();
    });

    test("builtin ping is good, unknown builtin is bad, close closes", async () => {
      const wire = await login(gw.unix, "carol");
      wire.send({ payload: { type: "builtin", id: "p", data: { command: { type: "ping" } } } });
      expect(await wire.next()).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "p" } });
      wire.send({ payload: { type: "builtin", id: "q", data: { command: { type: "nope" } } } });
      const bad = await wire.next();
      expect(bad.header.status).toBe("bad");
      expect(bad.header.error.code).toBe("unknown_builtin");
      expect(bad.payload.id).toBe("q");
      wire.send({ payload: { type: "builtin", id: "c", data: { command: { type: "close" } } } });
      await expectClosed(wire);
    });

    test("builtin whoami and types answer with data", async () => {
      const wire = await login(gw.tcp6, "olivia");
      wire.send({ payload: { type: "builtin", id: "w", data: { command: { type: "whoami" } } } });
      const me = await wire.next();
      expect(me.header).toEqual({ status: "good", messageType: "statusReport" });
      expect(me.payload.data).toMatchObject({ username: "olivia", listener: "tcp6" });
      wire.send({ payload: { type: "builtin", id: "t", data: { command: { type: "types" } } } });
      const types = await wire.next();
      expect(types.payload.data.commands).toEqual(["close", "ping", "whoami", "types", "ack"]);
      expect(types.payload.data.handlers).toEqual([]);
      wire.close();
    });

    test("a type with no handler gets a bad report naming it, and the connection stays", async () => {
      const wire = await login(gw.tcp6, "dave");
      wire.send({ payload: { type: "weather", id: "w1", data: { city: "Cape Town" } } });
      const report = await wire.next();
      expect(report.header).toMatchObject({ status: "bad", messageType: "statusReport", error: { code: "unknown_type" } });
      expect(report.header.error.message).toContain('"weather"');
      expect(report.payload).toEqual({ id: "w1" });
      await dummyRoundTrip(gw.tcp6, "dave");
      wire.close();
    });

    test("answers come back in the order the messages were sent", async () => {
      const wire = await login(gw.tcp4, "erin");
      const ids = Array.from({ length: 200 }, (_, i) => `m${i}`);
      const batch = ids.map((id, i) =>
        frame(
          i % 3 === 0
            ? { payload: { type: "builtin", id, data: { command: { type: "ping" } } } }
            : i % 3 === 1
              ? { payload: { type: "dummy", id, data: null } }
              : { payload: { type: "nothing", id, data: i } },
        ),
      );
      wire.sendRaw(Buffer.concat(batch));
      const got: string[] = [];
      for (let i = 0; i < ids.length; i++) got.push((await wire.next()).payload.id);
      expect(got).toEqual(ids);
      wire.close();
    });

    describe("bad input closes only that connection", () => {
      async function expectFatal(send: (w: Awaited<ReturnType<typeof openWire>>) => void, code: string, auth = true) {
        const bystander = await login(gw.tcp4, "bystander");
        const wire = auth ? await login(gw.tcp4, "offender") : await openWire(gw.tcp4);
        send(wire);
        const fatal = await wire.next();
        expect(fatal.header).toMatchObject({ status: "bad", messageType: "fatal", error: { code } });
        expect(typeof fatal.header.error.message).toBe("string");
        await expectClosed(wire);
        bystander.send({ payload: { type: "dummy", id: "still-here", data: null } });
        expect((await bystander.next()).payload.id).toBe("still-here");
        bystander.close();
        return fatal;
      }

      test("a declared length above the limit, with no body sent", async () => {
        const header = new Uint8Array(4);
        new DataView(header.buffer).setUint32(0, 5_000_000, true);
        const fatal = await expectFatal((w) => w.sendRaw(header), "frame_too_large");
        expect(fatal.header.error.message).toContain("1024");
      });

      test("bad JSON", async () => {
        await expectFatal((w) => w.sendRaw(frameText('{"payload": {')), "invalid_json");
      });

      test("invalid UTF-8", async () => {
        await expectFatal((w) => w.sendRaw(frameBytes(new Uint8Array([0x22, 0xc3, 0x28, 0x22]))), "invalid_utf8");
      });

      test("a payload without an id", async () => {
        const fatal = await expectFatal((w) => w.send({ payload: { type: "dummy" } }), "malformed_message");
        expect(fatal.header.error.message).toContain("payload.id");
      });

      test("a first frame with no scope", async () => {
        await expectFatal((w) => w.send({ header: {}, payload: { type: "dummy", id: "1" } }), "bad_scope", false);
      });

      test("a server-scope connection while no peers are configured", async () => {
        await expectFatal(
          (w) => w.send({ header: { scope: "server" }, payload: { type: "chat", data: 1 } }),
          "auth_failed",
          false,
        );
      });
    });

    test("a client without credentials gets a bad auth_special and is closed", async () => {
      const wire = await openWire(gw.tcp4);
      wire.send({ header: { scope: "client" }, payload: { type: "dummy", id: "1", data: null } });
      const reply = await wire.next();
      expect(reply.header).toMatchObject({ status: "bad", messageType: "statusReport", error: { code: "auth_failed" } });
      expect(reply.payload).toEqual({ id: "auth_special" });
      await expectClosed(wire);
    });

    test("a blank password is refused", async () => {
      const wire = await openWire(gw.tcp4);
      wire.send({ header: { scope: "client", authentication: { username: "  frank ", password: "" } } });
      expect((await wire.next()).header.status).toBe("bad");
      await expectClosed(wire);
    });

    test("a connection that sends nothing is closed after the auth timeout", async () => {
      const wire = await openWire(gw.unix);
      const fatal = await wire.next(5000);
      expect(fatal.header.error.code).toBe("auth_timeout");
      await expectClosed(wire);
    });

    test("a frame written one byte at a time", async () => {
      const wire = await openWire(gw.tcp4);
      const bytes = frame(authFrame("grace", "pw", { type: "dummy", id: "slow", data: "x" }));
      for (const b of bytes) {
        wire.sendRaw(new Uint8Array([b]));
        await new Promise((r) => setImmediate(r));
      }
      expect((await wire.next()).payload.id).toBe("auth_special");
      wire.close();
    });

    test("two frames in one write", async () => {
      const wire = await openWire(gw.tcp6);
      wire.sendRaw(
        Buffer.concat([frame(authFrame("heidi")), frame({ payload: { type: "dummy", id: "two", data: null } })]),
      );
      expect((await wire.next()).payload.id).toBe("auth_special");
      expect((await wire.next()).payload.id).toBe("two");
      wire.close();
    });

    test("a connection dropped mid-frame does not disturb the server", async () => {
      const wire = await login(gw.tcp4, "ivan");
      const whole = frame({ payload: { type: "dummy", id: "cut", data: "0123456789" } });
      wire.sendRaw(whole.subarray(0, 9));
      wire.close();
      await dummyRoundTrip(gw.tcp4, "judy");
      await dummyRoundTrip(gw.unix, "judy");
    });
  });

  describe(`${runtime}: process`, () => {
    test("SIGTERM stops the gateway, exit 0, socket file removed", async () => {
      const gw = await startGateway(runtime);
      const path = (gw.unix as { path: string }).path;
      expect(existsSync(path)).toBe(true);
      const wire = await login(gw.tcp4, "kim");
      const code = await gw.stop("SIGTERM");
      expect(code).toBe(0);
      expect(existsSync(path)).toBe(false);
      const fatal = wire.inbox.find((f) => f.header?.messageType === "fatal") ?? (await wire.next().catch(() => null));
      expect(fatal?.header?.error?.code).toBe("shutting_down");
    });

    test("a TCP listener with TLS: clients log in over TLS, a plain client is only closed, a renewed certificate is taken on reload", async () => {
      const dir = tempDir();
      const first = makeTestCertificate(dir, "first");
      const certFile = join(dir, "live.pem");
      const keyFile = join(dir, "live-key.pem");
      copyFileSync(first.cert, certFile);
      copyFileSync(first.key, keyFile);
      const gw = await startGateway(runtime, {
        network: { tcp4: { address: "127.0.0.1", port: 0, tls: { certFile, keyFile } } },
        limits: { authTimeoutMs: 1000 },
      });
      try {
        expect(gw.records().find((r) => r.msg === "listening" && r.listener === "tcp4")).toMatchObject({ tls: true });
        expect(gw.records().find((r) => r.msg === "listening" && r.listener === "tcp6").tls).toBeUndefined();
        // The test certificate lives two days: under the 14 the gateway warns about.
        const expiry = gw.records().find((r) => r.level === "warn" && r.listener === "tcp4");
        expect(expiry.msg).toMatch(/^the certificate of the tcp4 listener expires in [01] days?$/);
        expect(Date.parse(expiry.expires)).toBeGreaterThan(Date.now());
        const overTls = { ...(gw.tcp4 as { host: string; port: number }), ca: readFileSync(first.ca, "utf8") };
        await dummyRoundTrip(overTls, "tls-alice");
        const who = await login(overTls, "tls-bob");
        who.send({ payload: { type: "builtin", id: "w", data: { command: { type: "whoami" } } } });
        expect((await who.next()).payload.data).toMatchObject({ username: "tls-bob", listener: "tcp4" });

        // Plain bytes on the TLS port: no session, no frame, only a close; the listener carries on.
        const plain = await openWire(gw.tcp4);
        plain.send(authFrame("plain-carol"));
        await expectClosed(plain);
        expect(plain.inbox).toEqual([]);
        await dummyRoundTrip(overTls, "tls-alice");
        // One that opens the connection and never handshakes is closed by the auth timeout (and the linger after
        // it), as a silent plain one is.
        const silent = await openWire(gw.tcp4);
        await expectClosed(silent, 10000);
        // A client that does not trust the certificate gets no connection.
        await expect(openWire({ ...overTls, ca: readFileSync(makeTestCertificate(dir, "stranger").ca, "utf8") })).rejects.toThrow();

        // The client SDK and `bester send` speak it too.
        const sdk = await connectClient({ target: gw.tcp4 as ClientTarget, username: "tls-erin", password: "pw", tls: { ca: overTls.ca } });
        expect(await sdk.send("dummy")).toEqual({ id: "m-1", status: "good" });
        await sdk.close();
        const address = formatTarget(gw.tcp4 as ClientTarget);
        const send = (...flags: string[]) => runCli(runtime, ["send", "-u", "tls-frank", "-p", "pw", "-c", address, ...flags, "dummy"]);
        expect(await send("--ca", first.ca)).toMatchObject({ code: 0, stdout: '{"id":"m-1","status":"good"}\n' });
        const untrusted = await send("--tls");
        expect(untrusted.code).toBe(1);
        expect(untrusted.stderr).toContain(`bester send: cannot connect to ${address}: `);
        const cleartext = await send();
        expect(cleartext.code).toBe(1);
        const onUnix = await runCli(runtime, ["send", "-u", "x", "-p", "pw", "-c", formatTarget(gw.unix as ClientTarget), "--tls", "dummy"]);
        expect(onUnix).toMatchObject({ code: 2 });
        expect(onUnix.stderr).toContain("--tls and --ca are for a TCP address, not a UNIX socket");

        // Renewed in place (same paths, another CA): a reload opens the listener again with it, clients stay.
        const next = makeTestCertificate(dir, "next");
        copyFileSync(next.cert, certFile);
        copyFileSync(next.key, keyFile);
        gw.child.kill("SIGHUP");
        await gw.waitForLog((r) => r.msg === "reloaded" && String(r.change).startsWith("listener tcp4 reopened"));
        const relisted = await gw.waitForLog((r) => r.msg === "listening" && r.listener === "tcp4" && !r.address.endsWith(`:${overTls.port}`));
        const port = Number(/:(\d+)$/.exec(relisted.address)![1]);
        await dummyRoundTrip({ host: "127.0.0.1", port, ca: readFileSync(next.ca, "utf8") }, "tls-dave");
        await expect(openWire({ host: "127.0.0.1", port, ca: readFileSync(first.ca, "utf8") })).rejects.toThrow();
        who.send({ payload: { type: "dummy", id: "still-here", data: null } });
        expect((await who.next()).payload.id).toBe("still-here");
        who.close();

        // A broken renewal is refused, and the listener serves on with the certificate it has.
        writeFileSync(keyFile, "not a key\n");
        gw.child.kill("SIGHUP");
        const refused = await gw.waitForLog((r) => r.msg === "reload refused");
        expect(refused.error).toStartWith(`tcp4 listener: network.tcp4.tls: keyFile ${keyFile} holds no PEM private key (`);
        await dummyRoundTrip({ host: "127.0.0.1", port, ca: readFileSync(next.ca, "utf8") }, "tls-gina");
      } finally {
        await gw.stop();
      }
    });

    test("a TLS listener whose key does not match its certificate, or whose file is missing: one clear line, non-zero exit", async () => {
      const dir = tempDir();
      const a = makeTestCertificate(dir, "a");
      const b = makeTestCertificate(dir, "b");
      const tcp4 = (tls: object) => ({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0, tls } } });
      await expect(startGateway(runtime, tcp4({ certFile: a.cert, keyFile: b.key }))).rejects.toThrow(
        `tcp4 listener: network.tcp4.tls: keyFile ${b.key} is not the key of the certificate in ${a.cert}`,
      );
      const missing = join(dir, "nope.pem");
      await expect(startGateway(runtime, tcp4({ certFile: missing, keyFile: a.key }))).rejects.toThrow(
        `tcp4 listener: network.tcp4.tls.certFile: cannot read ${missing}: `,
      );
      await expect(startGateway(runtime, tcp4({ certFile: a.key, keyFile: a.key }))).rejects.toThrow(
        `tcp4 listener: network.tcp4.tls: certFile ${a.key} holds no PEM certificate`,
      );
    });

    test("a port already in use: one clear line and a non-zero exit", async () => {
      const blocker = createServer();
      await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
      const port = (blocker.address() as { port: number }).port;
      try {
        await expect(
          startGateway(runtime, { network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port } } }),
        ).rejects.toThrow(/tcp4 listener: cannot listen on 127\.0\.0\.1:\d+: address already in use/);
      } finally {
        blocker.close();
      }
    });

    test("past the connection limit a client gets a fatal too_many_connections", async () => {
      const gw = await startGateway(runtime, { limits: { maxConnections: 2 } });
      try {
        const a = await login(gw.tcp4, "a");
        const b = await login(gw.tcp4, "b");
        const c = await openWire(gw.tcp4);
        // What a refused connection sends is dropped, and disturbs nothing.
        c.send(authFrame("c"));
        const fatal = await c.next();
        expect(fatal.header).toMatchObject({ messageType: "fatal", error: { code: "too_many_connections" } });
        await expectClosed(c);
        a.close();
        // a's slot frees up: a new client gets in once the gateway has seen a go
        let d;
        for (let i = 0; i < 50; i++) {
          d = await openWire(gw.tcp4);
          d.send(authFrame("d"));
          const r = await d.next().catch(() => null);
          if (r?.payload?.id === "auth_special") break;
          d.close();
          d = undefined;
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(d).toBeDefined();
        d!.close();
        b.close();
      } finally {
        await gw.stop();
      }
    });

    test("a limits.maxConnections the open-file limit cannot allow is logged at start and on reload, with what is reachable", async () => {
      // The gateway inherits this process's hard limit and raises its soft limit to it, as Bun and Deno do.
      const hard = hardOpenFileLimit();
      expect(hard).toBeDefined();
      const warned = (r: any) => r.msg === "limits.maxConnections is above what the open-file limit allows";
      const over = await startGateway(runtime, { limits: { maxConnections: hard! + 1000 } });
      try {
        await over.waitForLog((r) => r.msg === "ready");
        const warnings = over.records().filter(warned);
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatchObject({ level: "warn", maxConnections: hard! + 1000, openFileLimit: hard, reachable: hard! - 64 });
      } finally {
        await over.stop();
      }
      const fits = await startGateway(runtime, { limits: { maxConnections: 100 } });
      try {
        await fits.waitForLog((r) => r.msg === "ready");
        expect(fits.records().filter(warned)).toEqual([]);
        // A reload that raises the limit past the open files says so too.
        const conf = JSON.parse(readFileSync(fits.configPath, "utf8"));
        writeFileSync(fits.configPath, JSON.stringify({ ...conf, limits: { maxConnections: hard! + 5 } }));
        fits.child.kill("SIGHUP");
        await fits.waitForLog((r) => r.msg === "reload done");
        expect(fits.records().filter(warned)).toMatchObject([{ maxConnections: hard! + 5, openFileLimit: hard }]);
      } finally {
        await fits.stop();
      }
    });

    test("a live server's unix socket is never taken over", async () => {
      const first = await startGateway(runtime, { network: { types: ["unix"] } });
      const path = (first.unix as { path: string }).path;
      try {
        await expect(
          startGateway(runtime, { network: { types: ["unix"], unix: { address: path } } }),
        ).rejects.toThrow(/in use by another running server/);
        await dummyRoundTrip(first.unix, "still-first");
      } finally {
        await first.stop();
      }
    });
  });
}
