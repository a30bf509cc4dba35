/**
 * Federation with real gateways: three of them (A, B, C) on loopback, each
 * running the SDK-based test handler test/fixtures/handlers/federated.ts as
 * its "chat" type, plus raw sockets playing a peer that never answers, an
 * original Bester server, and intruders.
 *
 *   C  peers: A, B (secrets only: C dials nobody)
 *   B  peers: A (at A's pre-chosen port), C; allows original servers from 127.0.0.1
 *   A  peers: B, C (over IPv6), "down" (nothing listens), "silent" (never answers), "legacy" (original)
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { copyFileSync, readFileSync } from "node:fs";
import { type RunningGateway, startGateway, tempDir } from "../_harness/gateway.ts";
import { makeTestCertificate } from "../_harness/tls.ts";
import { freePort } from "../_harness/redis.ts";
import { ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { expectClosed, login, openWire, type Wire } from "../_harness/wire.ts";

const BUN = join(ROOT, "node_modules/.bin/bun");
const FEDERATED = join(ROOT, "test/fixtures/handlers/federated.ts");
const SECRET_AB = "secret-between-a-and-b-0001";
const SECRET_AC = "secret-between-a-and-c-0002";
const SECRET_BC = "secret-between-b-and-c-0003";

const chatHandler = (name: string) => ({
  handlers: {
    availableTypes: ["chat"],
    typeMap: {
      chat: { handlerBinary: BUN, handlerArgs: [FEDERATED, name], unixDomainSocketPath: "chat.sock", envelope: true },
    },
  },
});

const msg = (id: string, data: unknown) => ({ payload: { type: "chat", id, data } });
const hostPort = (t: any) => `${t.host}:${t.port}`;

/** A raw TCP peer on 127.0.0.1: records every frame it receives; answers only if told to. */
async function rawPeer(onFrame: (frame: any, socket: Socket) => void = () => {}) {
  const frames: any[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    let buf = Buffer.alloc(0);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
        const frame = JSON.parse(buf.subarray(4, 4 + buf.readUInt32LE(0)).toString());
        buf = buf.subarray(4 + buf.readUInt32LE(0));
        frames.push(frame);
        onFrame(frame, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    frames,
    /** Resolves once `n` frames arrived, or fails after `ms`. */
    async waitFrames(n: number, ms = 5000) {
      const deadline = Date.now() + ms;
      while (frames.length < n) {
        if (Date.now() > deadline) throw new Error(`raw peer got ${frames.length} frames, expected ${n}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function report(wire: Wire, id: string, ms = 10000) {
  const f = await wire.next(ms);
  if (f.header?.messageType === "statusReport" && f.payload?.id === id) return f;
  throw new Error(`expected the status report for ${id}, got ${JSON.stringify(f)}`);
}

export function federationSuite(runtime: RuntimeName) {
  describe(`${runtime}: federation`, () => {
    let a: RunningGateway, b: RunningGateway, c: RunningGateway;
    let silent: Awaited<ReturnType<typeof rawPeer>>;
    let legacy: Awaited<ReturnType<typeof rawPeer>>;
    let downAddress: string;
    let aPort: number;

    beforeAll(async () => {
      silent = await rawPeer();
      // As the original daemon did: it needs the payload's id, answers with a status report about it, and closes.
      legacy = await rawPeer((frame, socket) => {
        const id = frame.payload?.id;
        const refuse = frame.payload?.data?.body === "refuse";
        const header = refuse ? { status: "bad", messageType: "statusReport" } : { status: "good", messageType: "statusReport" };
        const body = Buffer.from(JSON.stringify({ header, payload: { id } }));
        const length = Buffer.alloc(4);
        length.writeUInt32LE(body.length);
        socket.end(Buffer.concat([length, body]));
      });
      downAddress = `127.0.0.1:${await freePort()}`;
      aPort = await freePort();
      c = await startGateway(runtime, {
        ...chatHandler("C"),
        federation: { name: "C", peers: { A: { secret: SECRET_AC }, B: { secret: SECRET_BC } } },
      });
      b = await startGateway(runtime, {
        ...chatHandler("B"),
        federation: {
          name: "B",
          peers: { A: { address: `127.0.0.1:${aPort}`, secret: SECRET_AB }, C: { address: hostPort(c.tcp4), secret: SECRET_BC } },
          allowOriginal: ["127.0.0.1"],
        },
      });
      a = await startGateway(runtime, {
        ...chatHandler("A"),
        network: { tcp4: { address: "127.0.0.1", port: aPort } },
        federation: {
          name: "A",
          peers: {
            B: { address: hostPort(b.tcp4), secret: SECRET_AB },
            C: { address: `[::1]:${(c.tcp6 as any).port}`, secret: SECRET_AC },
            down: { address: downAddress, secret: "nobody-listens-here-000" },
            silent: { address: silent.address, secret: "never-answers-0000000" },
            legacy: { address: legacy.address, original: true },
          },
          connectTimeoutMs: 1000,
          replyTimeoutMs: 1500,
        },
      });
    }, 90000);

    afterAll(async () => {
      await Promise.allSettled([a?.stop(), b?.stop(), c?.stop(), silent?.close(), legacy?.close()]);
    });

    test("a chat from alice on A reaches bob on B through both gateways' handlers; good only once B accepted it", async () => {
      const alice = await login(a.tcp4, "alice");
      const bob = await login(b.tcp4, "bob");
      const started = Date.now();
      // B's handler takes 700 ms: A must not say "good" before B has delivered and reported.
      alice.send(msg("c1", { do: "chat", to: ["bob"], body: "hi bob, from A", servers: [hostPort(b.tcp4)], slowMs: 700 }));
      const got = await bob.next(10000);
      expect(got).toEqual({
        header: { messageType: "receivedMessage" },
        payload: { type: "chat", data: { from: "alice", body: "hi bob, from A", via: "A", at: "B" } },
      });
      const r = await report(alice, "c1");
      expect(Date.now() - started).toBeGreaterThanOrEqual(700);
      expect(r).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "c1" } });
      await b.waitForLog((l) => l.msg === "server message accepted" && l.peer === "A" && l.hops === 1);
      alice.close();
      bob.close();
    });

    test("B's verdict decides: when B's handler refuses, alice gets bad naming B and B's reason", async () => {
      const alice = await login(a.tcp4, "alice-r");
      alice.send(msg("r1", { do: "chat", to: ["bob"], body: "x", servers: [hostPort(b.tcp4)], fail: true }));
      const r = await report(alice, "r1");
      expect(r.header.status).toBe("bad");
      expect(r.header.error.code).toBe("peer_failed");
      expect(r.header.failedServers).toEqual([{ server: hostPort(b.tcp4), code: "chat_refused", message: "refused by B" }]);
      alice.close();
    });

    test("a long message crosses servers intact (its data passed on as text at every step)", async () => {
      const alice = await login(a.tcp4, "alice9");
      const bob = await login(b.tcp4, "bob9");
      const body = `long \u00e9 "quoted" ${"b".repeat(5000)}`;
      alice.send(msg("c9", { do: "chat", to: ["bob9"], body, servers: [hostPort(b.tcp4)] }));
      expect((await bob.next()).payload.data).toMatchObject({ from: "alice9", body, at: "B", via: "A" });
      expect((await report(alice, "c9")).header.status).toBe("good");
      alice.close();
      bob.close();
    });

    test("A -> B and C at once (C over IPv6): both users get it, then good", async () => {
      const alice = await login(a.tcp4, "alice2");
      const bob = await login(b.tcp4, "bob2");
      const carol = await login(c.tcp6, "carol2");
      const cAddr = `[::1]:${(c.tcp6 as any).port}`;
      alice.send(msg("c2", { do: "chat", to: ["bob2", "carol2"], body: "to both", servers: [hostPort(b.tcp4), cAddr] }));
      expect((await bob.next()).payload.data).toMatchObject({ from: "alice2", body: "to both", at: "B", via: "A" });
      expect((await carol.next()).payload.data).toMatchObject({ from: "alice2", body: "to both", at: "C", via: "A" });
      const r = await report(alice, "c2");
      expect(r.header.status).toBe("good");
      for (const w of [alice, bob, carol]) w.close();
    });

    test("A -> B -> C: B's handler sends it onwards with sendServers; good only after C accepted", async () => {
      const alice = await login(a.tcp4, "alice3");
      const carol = await login(c.tcp4, "carol3");
      alice.send(
        msg("c3", { do: "chat", to: ["carol3"], body: "via B", servers: [hostPort(b.tcp4)], onward: [hostPort(c.tcp4)] }),
      );
      expect((await carol.next()).payload.data).toMatchObject({ from: "alice3", body: "via B", at: "C", via: "B", relayedBy: "B" });
      expect((await report(alice, "c3")).header.status).toBe("good");
      await c.waitForLog((l) => l.msg === "server message accepted" && l.peer === "B" && l.hops === 2);
      alice.close();
      carol.close();
    });

    test("a peer that is down: the others still get it; bad names only the down one", async () => {
      const alice = await login(a.tcp4, "alice4");
      const bob = await login(b.tcp4, "bob4");
      alice.send(msg("c4", { do: "chat", to: ["bob4"], body: "some get it", servers: [downAddress, hostPort(b.tcp4)] }));
      expect((await bob.next()).payload.data.body).toBe("some get it");
      const r = await report(alice, "c4");
      expect(r.header.status).toBe("bad");
      expect(r.header.error.code).toBe("peer_failed");
      expect(r.header.error.message).toContain(`1 of 2 servers did not accept the message: ${downAddress} (peer_unreachable`);
      expect(r.header.failedServers).toHaveLength(1);
      expect(r.header.failedServers[0]).toMatchObject({ server: downAddress, code: "peer_unreachable" });
      alice.close();
      bob.close();
    });

    test("a peer that never answers: bad with peer_timeout after the reply timeout, and the frame it got is our wire format", async () => {
      const alice = await login(a.tcp4, "alice5");
      const started = Date.now();
      alice.send(msg("c5", { do: "chat", to: ["x"], body: "into the void", servers: [silent.address] }));
      const r = await report(alice, "c5");
      const took = Date.now() - started;
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(6000);
      expect(r.header.error.code).toBe("peer_failed");
      expect(r.header.failedServers).toEqual([{ server: silent.address, code: "peer_timeout", message: "no status report within 1500 ms" }]);
      await silent.waitFrames(1);
      const frame = silent.frames[0];
      expect(frame.header).toEqual({ scope: "server", hops: 1, authentication: { server: "A", secret: "never-answers-0000000" } });
      expect(frame.payload.type).toBe("chat");
      expect(frame.payload.id).toMatch(/^A-[0-9a-f-]{36}$/);
      expect(frame.payload.data).toEqual({ kind: "chat", from: "alice5", to: ["x"], body: "into the void" });
      alice.close();
    });

    test("an original peer: sent without credentials but with an id, as an original server reads it; its report decides", async () => {
      const alice = await login(a.tcp4, "alice6");
      alice.send(msg("c6", { do: "chat", to: ["old"], body: "hello 2020", servers: [legacy.address] }));
      expect((await report(alice, "c6")).header.status).toBe("good");
      await legacy.waitFrames(1);
      const frame = legacy.frames[0];
      expect(frame.header.scope).toBe("server");
      expect(frame.header.authentication).toBeUndefined();
      expect(frame.payload.id).toMatch(/^A-[0-9a-f-]{36}$/);
      expect(frame.payload).toMatchObject({ type: "chat", data: { kind: "chat", from: "alice6", to: ["old"], body: "hello 2020" } });
      // Its "bad" is not taken for delivered.
      alice.send(msg("c6b", { do: "chat", to: ["old"], body: "refuse", servers: [legacy.address] }));
      const refused = await report(alice, "c6b");
      expect(refused.header.status).toBe("bad");
      expect(refused.header.failedServers).toEqual([{ server: legacy.address, code: "peer_failed", message: 'status "bad"' }]);
      alice.close();
    });

    test("a server that is not a configured peer is not dialled: unknown_peer", async () => {
      const alice = await login(a.tcp4, "alice7");
      alice.send(msg("c7", { do: "chat", to: ["x"], body: "?", servers: ["127.0.0.1:1", "[::1]:1"] }));
      const r = await report(alice, "c7");
      expect(r.header.failedServers.map((f: any) => [f.server, f.code])).toEqual([
        ["127.0.0.1:1", "unknown_peer"],
        ["[::1]:1", "unknown_peer"],
      ]);
      alice.close();
    });

    test("two servers pointing at each other: the hop count stops the loop, the sender gets hop_limit", async () => {
      const alice = await login(a.tcp4, "alice8");
      const started = Date.now();
      alice.send(msg("c8", { do: "loop", next: { A: hostPort(b.tcp4), B: `127.0.0.1:${aPort}` } }));
      const r = await report(alice, "c8");
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.header.status).toBe("bad");
      expect(r.header.error.code).toBe("hop_limit");
      expect(r.header.failedServers[0]).toMatchObject({ server: hostPort(b.tcp4), code: "hop_limit" });
      // A -> B (1) -> A (2) -> B (3) -> A (4); A refuses to make hop 5.
      await a.waitForLog((l) => l.msg === "sendServers hop limit reached" && l.hops === 5);
      await a.waitForLog((l) => l.msg === "server message accepted" && l.peer === "B" && l.hops === 4);
      alice.close();
    });

    describe("inbound server scope", () => {
      test("a configured peer with its secret: the message is handled, the report names its id, then close", async () => {
        const bob = await login(b.tcp4, "bob9");
        const peer = await openWire(b.tcp4);
        peer.send({
          header: { scope: "server", authentication: { server: "A", secret: SECRET_AB }, hops: 1 },
          payload: { type: "chat", id: "p-1", data: { kind: "chat", from: "zed", to: ["bob9"], body: "direct" } },
        });
        expect((await bob.next()).payload.data).toEqual({ from: "zed", body: "direct", via: "A", at: "B" });
        expect(await peer.next()).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "p-1" } });
        await expectClosed(peer);
        bob.close();
      });

      test("an original server without credentials, from an allowed address: handled, closed, no report", async () => {
        const bob = await login(b.tcp4, "bob10");
        const peer = await openWire(b.tcp4);
        peer.send({ header: { scope: "server" }, payload: { data: { kind: "chat", from: "d", to: ["bob10"], body: "2020" }, type: "chat" } });
        expect((await bob.next()).payload.data).toEqual({ from: "d", body: "2020", via: "127.0.0.1", at: "B" });
        await expectClosed(peer);
        expect(peer.inbox).toEqual([]);
        bob.close();
      });

      test("an admitted server's dummy is a good report, not an error", async () => {
        const peer = await openWire(b.tcp4);
        peer.send({ header: { scope: "server" }, payload: { type: "dummy", id: "ping-1", data: null } });
        expect(await peer.next()).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "ping-1" } });
        await expectClosed(peer);
      });

      const intruders: Array<[string, object, RegExp]> = [
        ["no credentials from an address that is not allowed (::1)", {}, /need header\.authentication/],
        ["an unknown server name", { authentication: { server: "mallory", secret: SECRET_AB } }, /^unknown server or wrong secret$/],
        ["a known name with a wrong secret", { authentication: { server: "A", secret: "guessed-guessed-guessed" } }, /^unknown server or wrong secret$/],
        ["credentials of the wrong shape", { authentication: { username: "A", password: "x" } }, /expected \{"server"/],
      ];
      for (const [name, header, text] of intruders) {
        test(`refused with a fatal frame: ${name}`, async () => {
          const bob = await login(b.tcp4, "bob11");
          const intruder = await openWire(b.tcp6);
          intruder.send({
            header: { scope: "server", ...header },
            payload: { type: "chat", id: "evil", data: { kind: "chat", from: "eve", to: ["bob11"], body: "spoofed" } },
          });
          const fatal = await intruder.next();
          expect(fatal.header.messageType).toBe("fatal");
          expect(fatal.header.error.code).toBe("auth_failed");
          expect(fatal.header.error.message).toMatch(text);
          await expectClosed(intruder);
          // Nothing was delivered: a dummy round trip proves bob's queue is empty behind it.
          bob.send({ payload: { type: "dummy", id: "d", data: null } });
          expect((await bob.next()).payload).toEqual({ data: null, type: "dummy", id: "d" });
          bob.close();
        });
      }

      test("a gateway without peers turns every server away", async () => {
        const lone = await startGateway(runtime, {});
        try {
          const w = await openWire(lone.tcp4);
          w.send({ header: { scope: "server", authentication: { server: "A", secret: SECRET_AB } }, payload: { type: "chat", data: 1 } });
          const fatal = await w.next();
          expect(fatal.header.error).toEqual({ code: "auth_failed", message: "unknown server or wrong secret" });
          await expectClosed(w);
          const w2 = await openWire(lone.tcp4);
          w2.send({ header: { scope: "server" }, payload: { type: "chat", data: 1 } });
          expect((await w2.next()).header.error.message).toMatch(/no configured peers/);
          await expectClosed(w2);
        } finally {
          await lone.stop();
        }
      });

      test("a message past the hop limit is answered bad (hop_limit) and not handled", async () => {
        const peer = await openWire(b.tcp4);
        peer.send({
          header: { scope: "server", authentication: { server: "A", secret: SECRET_AB }, hops: 9 },
          payload: { type: "chat", id: "p-9", data: { kind: "chat", to: ["bob"], body: "looping" } },
        });
        const r = await peer.next();
        expect(r.payload.id).toBe("p-9");
        expect(r.header.error.code).toBe("hop_limit");
        await expectClosed(peer);
      });

      test("a type the receiving server has no handler for: bad unknown_type back to the sender", async () => {
        const peer = await openWire(b.tcp4);
        peer.send({
          header: { scope: "server", authentication: { server: "C", secret: SECRET_BC } },
          payload: { type: "teleport", id: "p-t", data: 1 },
        });
        const r = await peer.next();
        expect(r.header.status).toBe("bad");
        expect(r.header.error.code).toBe("unknown_type");
        await expectClosed(peer);
      });
    });
  });

  describe(`${runtime}: federation over TLS`, () => {
    test("a peer dialled with TLS and its CA: the message crosses; with a CA that did not sign the peer's certificate, it is bad and nothing is delivered", async () => {
      const dir = tempDir();
      const cert = makeTestCertificate(dir, "t");
      const stranger = makeTestCertificate(dir, "stranger");
      const secret = "secret-between-s-and-t-0004";
      const t = await startGateway(runtime, {
        ...chatHandler("T"),
        network: {
          tcp4: { address: "127.0.0.1", port: 0, tls: { certFile: cert.cert, keyFile: cert.key } },
          tcp6: { address: "::1", port: 0, tls: { certFile: cert.cert, keyFile: cert.key } },
        },
        federation: { name: "T", peers: { S: { secret } } },
      });
      const tAddress = hostPort(t.tcp4);
      // T twice: over IPv4 with the CA that signed its certificate, over IPv6 with one that did not.
      const other = `[::1]:${(t.tcp6 as any).port}`;
      const peerCa = join(dir, "peer-ca.pem");
      copyFileSync(cert.ca, peerCa);
      const s = await startGateway(runtime, {
        ...chatHandler("S"),
        federation: {
          name: "S",
          peers: {
            T: { address: tAddress, secret, tls: true, caFile: peerCa },
            Tstranger: { address: other, secret, tls: true, caFile: stranger.ca },
          },
          connectTimeoutMs: 2000,
          replyTimeoutMs: 3000,
        },
      });
      try {
        const ca = readFileSync(cert.ca, "utf8");
        const alice = await login(s.tcp4, "alice-tls");
        const bob = await login({ ...(t.tcp4 as { host: string; port: number }), ca }, "bob-tls");
        alice.send(msg("t1", { do: "chat", to: ["bob-tls"], body: "over TLS", servers: [tAddress] }));
        expect((await bob.next(10000)).payload.data).toMatchObject({ from: "alice-tls", body: "over TLS", via: "S", at: "T" });
        expect((await report(alice, "t1")).header.status).toBe("good");

        alice.send(msg("t2", { do: "chat", to: ["bob-tls"], body: "never", servers: [other] }));
        const bad = await report(alice, "t2");
        expect(bad.header.status).toBe("bad");
        expect(bad.header.failedServers).toEqual([{ server: other, code: "peer_unreachable", message: expect.any(String) }]);
        expect(bob.inbox).toEqual([]);

        // The CA file is read once per config: changed on disk, it counts from the next reload on.
        copyFileSync(stranger.ca, peerCa);
        alice.send(msg("t3", { do: "chat", to: ["bob-tls"], body: "still the CA read before", servers: [tAddress] }));
        expect((await bob.next(10000)).payload.data).toMatchObject({ body: "still the CA read before" });
        expect((await report(alice, "t3")).header.status).toBe("good");
        s.child.kill("SIGHUP");
        await s.waitForLog((r) => r.msg === "reload done");
        alice.send(msg("t4", { do: "chat", to: ["bob-tls"], body: "never", servers: [tAddress] }));
        expect((await report(alice, "t4")).header.failedServers).toEqual([{ server: tAddress, code: "peer_unreachable", message: expect.any(String) }]);
        expect(bob.inbox).toEqual([]);
        alice.close();
        bob.close();
      } finally {
        await Promise.allSettled([s.stop(), t.stop()]);
      }
    }, 60000);
  });
}
