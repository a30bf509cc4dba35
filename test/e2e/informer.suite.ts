/**
 * The informer socket against a real gateway with live client sessions: the
 * raw protocol (PROTOCOL.md §7), bad requests on a connection that stays
 * usable, the socket file's mode, the SDK client, and a real handler process
 * (test/fixtures/handlers/federated.ts) asking through it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { expectClosed, frame, frameText, login, openWire, type Wire } from "../_harness/wire.ts";
import { connectInformer, InformerError } from "../../src/sdk/informer.ts";

const BUN = join(ROOT, "node_modules/.bin/bun");
const FEDERATED = join(ROOT, "test/fixtures/handlers/federated.ts");
const ADMIN_INFO = { operator: "ops@example.org", region: "eu", motd: ["hello"] };

const ask = (type: string, data?: unknown) => ({ command: data === undefined ? { type } : { type, data } });

/** Polls `fn` until `pred` holds; fails after `ms`. */
async function until<T>(fn: () => Promise<T>, pred: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function informerSuite(runtime: RuntimeName) {
  describe(`${runtime}: informer`, () => {
    let gw: RunningGateway;
    let path: string;
    let informer: Wire;
    const call = async (type: string, data?: unknown) => {
      informer.send(ask(type, data));
      return informer.next();
    };

    beforeAll(async () => {
      gw = await startGateway(runtime, {
        informer: { enabled: true, path: "informer.sock" },
        admin: { info: ADMIN_INFO },
        limits: { maxFrameBytes: 16384, maxPendingBytes: 65536 },
        handlers: {
          availableTypes: ["chat"],
          typeMap: {
            chat: { handlerBinary: BUN, handlerArgs: [FEDERATED, "solo"], unixDomainSocketPath: "chat.sock", envelope: true, mode: "persistent" },
          },
        },
      });
      path = join(gw.dir, "informer.sock");
      informer = await openWire({ path });
    }, 60000);

    afterAll(async () => {
      informer?.close();
      await gw?.stop();
    });

    test("the socket file is a socket only the gateway's user may use (mode 0600)", () => {
      const st = statSync(path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.uid).toBe(process.getuid!());
      // It was bound in a private staging directory, which is gone.
      expect(readdirSync(gw.dir).filter((n) => n.startsWith(".bi-"))).toEqual([]);
    });

    test("listClients, isClient and serverInfo follow the live sessions", async () => {
      const alice1 = await login(gw.tcp4, "alice");
      const alice2 = await login(gw.unix, "alice");
      const bob = await login(gw.tcp6, "bob");
      expect(await call("listClients")).toEqual({ status: "0", data: ["alice", "bob"] });
      expect(await call("isClient", "bob")).toEqual({ status: "0", data: true });
      expect(await call("isClient", "  alice ")).toEqual({ status: "0", data: true });
      expect(await call("isClient", "nobody")).toEqual({ status: "0", data: false });
      expect((await call("serverInfo")).data.clientCount).toBe(3);
      bob.close();
      await until(() => call("listClients"), (r) => JSON.stringify(r.data) === '["alice"]');
      expect(await call("isClient", "bob")).toEqual({ status: "0", data: false });
      alice1.close();
      alice2.close();
      await until(() => call("listClients"), (r) => r.data.length === 0);
      expect((await call("serverInfo")).data.clientCount).toBe(0);
    });

    test("serverInfo carries admin.info and every listener", async () => {
      const r = await call("serverInfo");
      expect(r.status).toBe("0");
      expect(r.data.adminInfo).toEqual(ADMIN_INFO);
      const listeners = Object.values(r.data.listeners);
      expect(Object.keys(r.data.listeners)).toEqual(["listener0", "listener1", "listener2"]);
      expect(listeners).toContainEqual({ type: "tcp4", address: "127.0.0.1", port: (gw.tcp4 as any).port });
      expect(listeners).toContainEqual({ type: "tcp6", address: "::1", port: (gw.tcp6 as any).port });
      expect(listeners).toContainEqual({ type: "unix", address: (gw.unix as any).path });
    });

    test("a bad request gets status 1 and the connection stays usable", async () => {
      const bad: Array<[Uint8Array, string, RegExp]> = [
        [frameText("{nope"), "invalid_json", /not valid JSON/],
        [frameText(""), "invalid_json", /empty frame/],
        [frame([1, 2]), "malformed_message", /^command: expected an object/],
        [frame({ command: { type: 5 } }), "malformed_message", /^command\.type: expected a string, got 5/],
        [frame(ask("isClient", 42)), "malformed_message", /^command\.data: expected a username/],
        [frame(ask("shutdownEverything")), "unknown_command", /known: listClients, isClient, serverInfo, quit/],
      ];
      for (const [bytes, code, text] of bad) {
        informer.sendRaw(bytes);
        const r = await informer.next();
        expect(r.status).toBe("1");
        expect(r.error.code).toBe(code);
        expect(r.error.message).toMatch(text);
      }
      expect(await call("listClients")).toEqual({ status: "0", data: [] });
      expect(informer.isClosed()).toBe(false);
    });

    test("requests written back to back are answered in order", async () => {
      const alice = await login(gw.tcp4, "alice-p");
      const names = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? "alice-p" : `ghost${i}`));
      informer.sendRaw(Buffer.concat(names.map((n) => frame(ask("isClient", n)))));
      const replies: boolean[] = [];
      for (let i = 0; i < names.length; i++) replies.push((await informer.next()).data);
      expect(replies).toEqual(names.map((n) => n === "alice-p"));
      alice.close();
    });

    test("quit: the gateway answers and closes that connection only", async () => {
      const other = await openWire({ path });
      other.send(ask("quit"));
      expect(await other.next()).toEqual({ status: "0", data: null });
      await expectClosed(other);
      expect(await call("listClients")).toEqual({ status: "0", data: [] });
    });

    test("a frame above the size limit is refused and that connection closed", async () => {
      const other = await openWire({ path });
      const head = Buffer.alloc(4);
      head.writeUInt32LE(1_000_000);
      other.sendRaw(head);
      const r = await other.next();
      expect(r.status).toBe("1");
      expect(r.error.code).toBe("frame_too_large");
      await expectClosed(other);
    });

    test("a handler lists the connected clients through the informer", async () => {
      const alice = await login(gw.tcp4, "alice-h");
      const bob = await login(gw.tcp4, "bob-h");
      alice.send({ payload: { type: "chat", id: "w1", data: { do: "who" } } });
      expect((await alice.next()).payload).toEqual({ type: "chat", data: { online: ["alice-h", "bob-h"] } });
      expect((await alice.next()).header.status).toBe("good");
      alice.send({ payload: { type: "chat", id: "w2", data: { do: "is", name: "bob-h" } } });
      expect((await alice.next()).payload.data).toEqual({ is: true });
      expect((await alice.next()).header.status).toBe("good");
      alice.send({ payload: { type: "chat", id: "w3", data: { do: "info" } } });
      const info = (await alice.next()).payload.data;
      expect(info.adminInfo).toEqual(ADMIN_INFO);
      expect(info.clientCount).toBe(2);
      alice.close();
      bob.close();
    });

    test("the SDK client: every command, a refused one, quit", async () => {
      const client = await connectInformer({ socket: path, timeoutMs: 3000 });
      const carol = await login(gw.tcp4, "carol-s");
      expect(await client.listClients()).toEqual(["carol-s"]);
      expect(await client.isClient("carol-s")).toBe(true);
      expect(await client.isClient("dave")).toBe(false);
      const [a, b] = await Promise.all([client.serverInfo(), client.listClients()]);
      expect(a.adminInfo).toEqual(ADMIN_INFO);
      expect(b).toEqual(["carol-s"]);
      const err = (await client.request("nope").catch((e: unknown) => e)) as InformerError;
      expect(err).toBeInstanceOf(InformerError);
      expect(err.code).toBe("failed");
      expect(err.detail?.code).toBe("unknown_command");
      expect(await client.isClient("carol-s")).toBe(true);
      await client.quit();
      const after = await client.listClients().catch((e) => e);
      expect(after.code).toBe("closed");
      carol.close();
    });

    test("the SDK client without a socket, or with nothing listening, says why", async () => {
      const saved = process.env.BESTER_INFORMER_SOCKET;
      const savedArgv = process.argv;
      process.env.BESTER_INFORMER_SOCKET = "";
      process.argv = savedArgv.slice(0, 2);
      try {
        expect((await connectInformer().catch((e) => e)).code).toBe("no_socket");
      } finally {
        process.argv = savedArgv;
        if (saved === undefined) delete process.env.BESTER_INFORMER_SOCKET;
        else process.env.BESTER_INFORMER_SOCKET = saved;
      }
      expect((await connectInformer({ socket: join(gw.dir, "nothing.sock") }).catch((e) => e)).code).toBe("unavailable");
    });

    test("the socket file goes with the gateway", async () => {
      const other = await startGateway(runtime, { informer: { enabled: true, path: "inf.sock" } });
      const p = join(other.dir, "inf.sock");
      expect(existsSync(p)).toBe(true);
      const w = await openWire({ path: p });
      w.send(ask("listClients"));
      expect(await w.next()).toEqual({ status: "0", data: [] });
      other.child.kill("SIGTERM");
      await expectClosed(w, 10000);
      await other.exited;
      expect(existsSync(p)).toBe(false);
      await other.stop();
    });
  });
}
