/**
 * The handler SDK on a real UNIX socket, driven the way the gateway drives a
 * handler: raw frames from node:net, through the harness's own decoder.
 */
import { afterEach, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  fail,
  HandlerStartError,
  sendClients,
  sendHandler,
  sendServers,
  serveHandler,
  type HandleFunction,
  type HandlerRequest,
  type RunningHandler,
  type ServeHandlerOptions,
} from "../../src/sdk/handler.ts";
import { tempDir } from "../_harness/gateway.ts";
import { ROOT, RUNTIMES } from "../_harness/runtimes.ts";
import { expectClosed, frame, frameBytes, frameText, openWire } from "../_harness/wire.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let socketsUnderTest: "auto" | "node:net" = "auto";

async function start(handle: HandleFunction, extra: Partial<ServeHandlerOptions> = {}) {
  const dir = tempDir("bester-sdk-");
  const socket = join(dir, "h.sock");
  const logs: string[] = [];
  const running = await serveHandler({ socket, handle, log: (l) => logs.push(l), sockets: socketsUnderTest, ...extra });
  cleanups.push(async () => {
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { running, socket, dir, logs };
}

const echoData: HandleFunction = ({ data, meta }) => sendClients(["x"], { data, meta: meta ?? null });

const envelope = (data: unknown, from = "alice") => ({
  data,
  meta: { from, scope: "client", id: "m-1", type: "t", via: ["first"] },
});

describe("sdk handler: answer builders", () => {
  test("produce the wire shapes of PROTOCOL.md §4", () => {
    expect(sendClients("bob", 1)).toEqual({ header: { status: "0", command: { type: "sendClients", data: ["bob"] } }, data: 1 });
    expect(sendClients(["a", "b"], undefined)).toEqual({
      header: { status: "0", command: { type: "sendClients", data: ["a", "b"] } },
      data: null,
    });
    expect(sendHandler("chat", { x: 1 })).toEqual({ header: { status: "0", command: { type: "sendHandler", data: "chat" } }, data: { x: 1 } });
    expect(sendServers("[::1]:2221", "d")).toEqual({
      header: { status: "0", command: { type: "sendServers", data: ["[::1]:2221"] } },
      data: "d",
    });
    expect(fail("nope")).toEqual({ header: { status: "1", error: { code: "handler_failed", message: "nope" } }, data: null });
    expect(fail("nope", "mine").header.error).toEqual({ code: "mine", message: "nope" });
  });
});

test("on Deno's own sockets (sockets: runtime): answers in order, and a gateway that half-closes still gets its answer", async () => {
  const dir = tempDir("bester-sdk-deno-");
  const socket = join(dir, "h.sock");
  const [deno, ...args] = RUNTIMES.deno;
  // RUNTIMES.deno runs src/main.ts: the same flags, this fixture instead.
  const child = spawn(deno!, [...args.slice(0, -1), join(ROOT, "test/fixtures/handlers/sdk-on-runtime.ts"), socket], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  cleanups.push(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`the Deno handler exited (${code}) before it was ready`)));
  });
  const piped = await openWire({ path: socket });
  piped.sendRaw(Buffer.concat([1, 2, 3].map((n) => frame({ n }))));
  for (const n of [1, 2, 3]) expect((await piped.next()).data).toEqual({ n });
  piped.close();
  const wire = await openWire({ path: socket });
  wire.socket.end(frame("late"));
  expect((await wire.next()).data).toBe("late");
  await expectClosed(wire);
});

// Each serving behaviour on both socket kinds: the runtime adapter's (Bun here) and node:net (Deno's and Node's).
for (const kind of ["auto", "node:net"] as const) {
  describe(`sockets: ${kind}`, () => {
    beforeAll(() => {
      socketsUnderTest = kind;
    });

    describe("sdk handler: serving", () => {
      test("per-message: one frame per connection, the gateway closes after the answer", async () => {
        const { socket } = await start(({ data }) => sendClients(["bob"], { got: data }));
        for (const value of [1, "two", null, [3]]) {
          const wire = await openWire({ path: socket });
          wire.send(value);
          expect(await wire.next()).toEqual({ header: { status: "0", command: { type: "sendClients", data: ["bob"] } }, data: { got: value } });
          wire.close();
        }
      });

      test("a gateway that half-closes after its request still gets the answer, then the handler closes", async () => {
        const { socket } = await start(async ({ data }) => {
          await Bun.sleep(30);
          return sendClients(["bob"], data);
        });
        const wire = await openWire({ path: socket });
        wire.socket.end(frame("late"));
        expect((await wire.next()).data).toBe("late");
        await expectClosed(wire);
      });

      test("pipelined: 100 frames in one write, async handle with random delays, answers in FIFO order", async () => {
        let running = 0;
        let maxRunning = 0;
        const { socket } = await start(async ({ data }) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await Bun.sleep(Math.floor(Math.random() * 20));
          running--;
          return sendClients(["u"], data);
        });
        const wire = await openWire({ path: socket });
        const all = Array.from({ length: 100 }, (_, i) => frame({ n: i }));
        wire.sendRaw(Buffer.concat(all));
        const seen: number[] = [];
        for (let i = 0; i < 100; i++) seen.push((await wire.next()).data.n);
        expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i));
        // The requests really ran concurrently: ordering is the SDK's doing, not a serial loop's.
        expect(maxRunning).toBeGreaterThan(1);
        wire.close();
      });

      test("a frame split into single bytes is reassembled", async () => {
        const { socket } = await start(echoData);
        const wire = await openWire({ path: socket });
        const bytes = frame({ split: "ü" });
        for (const b of bytes) {
          wire.sendRaw(Uint8Array.of(b));
          await Bun.sleep(1);
        }
        expect((await wire.next()).data.data).toEqual({ split: "ü" });
        wire.close();
      });
    });

    describe("sdk handler: envelopes", () => {
      async function ask(socket: string, value: unknown) {
        const wire = await openWire({ path: socket });
        wire.send(value);
        const answer = await wire.next();
        wire.close();
        return answer;
      }

      test("auto (default): exactly {data, meta} with a string meta.from is an envelope, anything else is bare", async () => {
        const { socket } = await start(echoData);
        expect((await ask(socket, envelope({ x: 1 }))).data).toEqual({
          data: { x: 1 },
          meta: { from: "alice", scope: "client", id: "m-1", type: "t", via: ["first"] },
        });
        const extraKey = { ...envelope(1), more: true };
        expect((await ask(socket, extraKey)).data).toEqual({ data: extraKey, meta: null });
        const numericFrom = { data: 1, meta: { from: 7 } };
        expect((await ask(socket, numericFrom)).data).toEqual({ data: numericFrom, meta: null });
        expect((await ask(socket, 5)).data).toEqual({ data: 5, meta: null });
      });

      test("a missing via becomes []", async () => {
        const { socket } = await start(echoData);
        const answer = await ask(socket, { data: 1, meta: { from: "bob", scope: "client", id: "m", type: "t" } });
        expect(answer.data.meta.via).toEqual([]);
      });

      test("envelope: true refuses a bare request without calling handle", async () => {
        let calls = 0;
        const { socket } = await start(
          (r) => {
            calls++;
            return echoData(r);
          },
          { envelope: true },
        );
        const answer = await ask(socket, { to: "bob" });
        expect(answer.header.status).toBe("1");
        expect(answer.header.error.code).toBe("envelope_expected");
        expect(answer.header.error.message).toContain('"envelope": true');
        expect(calls).toBe(0);
        expect((await ask(socket, envelope(2))).data.meta.from).toBe("alice");
      });

      test("envelope: false passes an envelope-shaped value through as bare data", async () => {
        const { socket } = await start(echoData, { envelope: false });
        expect((await ask(socket, envelope(3))).data).toEqual({ data: envelope(3), meta: null });
      });
    });

    describe("sdk handler: failures", () => {
      test("a throw or rejection becomes fail(message, handler_error) and the connection keeps serving", async () => {
        const handle = async ({ data }: HandlerRequest) => {
          if (data === "throw") throw new Error("boom");
          if (data === "reject") return Promise.reject(new Error("later boom"));
          return sendClients(["u"], data);
        };
        const { socket, logs } = await start(handle);
        const wire = await openWire({ path: socket });
        wire.send("throw");
        wire.send("ok-1");
        wire.send("reject");
        wire.send("ok-2");
        expect(await wire.next()).toEqual({ header: { status: "1", error: { code: "handler_error", message: "boom" } }, data: null });
        expect((await wire.next()).data).toBe("ok-1");
        expect((await wire.next()).header.error).toEqual({ code: "handler_error", message: "later boom" });
        expect((await wire.next()).data).toBe("ok-2");
        expect(logs.some((l) => l.includes("boom"))).toBe(true);
        wire.close();
      });

      test("a non-answer or an unserialisable answer becomes a handler_error failure", async () => {
        const { socket } = await start(({ data }) => {
          if (data === "nothing") return undefined as never;
          if (data === "plain") return { hello: 1 } as never;
          return sendClients(["u"], 10n);
        });
        const wire = await openWire({ path: socket });
        for (const d of ["nothing", "plain", "bigint"]) wire.send(d);
        for (let i = 0; i < 3; i++) {
          const answer = await wire.next();
          expect(answer.header.status).toBe("1");
          expect(answer.header.error.code).toBe("handler_error");
        }
        wire.close();
      });

      test("a garbage frame closes only that connection", async () => {
        const { socket, logs } = await start(echoData);
        const good = await openWire({ path: socket });
        const bad = await openWire({ path: socket });
        bad.sendRaw(frameText("{not json"));
        await expectClosed(bad);
        expect(logs.some((l) => l.includes("not valid JSON"))).toBe(true);
        good.send("still");
        expect((await good.next()).data.data).toBe("still");
        const fresh = await openWire({ path: socket });
        fresh.send("new");
        expect((await fresh.next()).data.data).toBe("new");
        good.close();
        fresh.close();
      });

      test("a frame above maxFrameBytes closes that connection before its body arrives", async () => {
        const { socket } = await start(echoData, { maxFrameBytes: 64 });
        const wire = await openWire({ path: socket });
        // Only the header: the handler must not wait for 65 body bytes.
        wire.sendRaw(frameBytes(new Uint8Array(65)).subarray(0, 4));
        await expectClosed(wire);
      });
    });

    describe("sdk handler: the socket file", () => {
      test("a stale socket file (nobody answers) is replaced", async () => {
        const dir = tempDir("bester-sdk-");
        const socket = join(dir, "stale.sock");
        execFileSync("python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socket)})`]);
        expect(existsSync(socket)).toBe(true);
        const running = await serveHandler({ socket, handle: echoData });
        const wire = await openWire({ path: socket });
        wire.send(1);
        expect((await wire.next()).data.data).toBe(1);
        wire.close();
        await running.close();
        expect(existsSync(socket)).toBe(false);
        rmSync(dir, { recursive: true, force: true });
      });

      test("a live socket is refused with in_use, and its owner keeps serving", async () => {
        const { socket } = await start(echoData);
        const err = await serveHandler({ socket, handle: echoData }).catch((e) => e);
        expect(err).toBeInstanceOf(HandlerStartError);
        expect(err.code).toBe("in_use");
        const wire = await openWire({ path: socket });
        wire.send("owner");
        expect((await wire.next()).data.data).toBe("owner");
        wire.close();
      });

      test("a regular file at the path is never replaced", async () => {
        const dir = tempDir("bester-sdk-");
        const path = join(dir, "precious");
        writeFileSync(path, "keep me");
        const err = await serveHandler({ socket: path, handle: echoData }).catch((e) => e);
        expect(err).toBeInstanceOf(HandlerStartError);
        expect(err.code).toBe("not_socket");
        expect(readFileSync(path, "utf8")).toBe("keep me");
        rmSync(dir, { recursive: true, force: true });
      });

      test("close() delivers the answer in flight, then ends the connection and removes the file", async () => {
        const dir = tempDir("bester-sdk-");
        const socket = join(dir, "h.sock");
        let started!: () => void;
        const isStarted = new Promise<void>((r) => (started = r));
        const running: RunningHandler = await serveHandler({
          socket,
          handle: async ({ data }) => {
            started();
            await Bun.sleep(100);
            return sendClients(["u"], data);
          },
        });
        const wire = await openWire({ path: socket });
        wire.send("slow");
        await isStarted;
        const closing = running.close();
        expect((await wire.next()).data).toBe("slow");
        await expectClosed(wire);
        await closing;
        expect(existsSync(socket)).toBe(false);
        await expect(openWire({ path: socket }, 500)).rejects.toThrow();
        rmSync(dir, { recursive: true, force: true });
      });
    });
  });
}
