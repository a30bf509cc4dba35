/**
 * The runtime adapters' WebSocket listener on Bun and on Deno (each in its
 * own process, test/fixtures/runtime-websocket.ts), through a raw WebSocket
 * client: messages in are framed chunks and frames out are text messages,
 * whatever way a write splits them; a reused buffer's bytes arrive as they
 * were offered past back-pressure and drain; close kinds become close
 * codes; a paused connection stops reading; a frame that breaks the
 * protocol closes with 1002; the origin check answers 403 before any
 * upgrade; other requests reach `fetch`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT, RUNTIMES } from "../_harness/runtimes.ts";
import { openWs, UpgradeRefused } from "../_harness/ws-wire.ts";

const FIXTURE = join(ROOT, "test/fixtures/runtime-websocket.ts");

for (const runtime of ["bun", "deno"] as const) {
  describe(`${runtime}: WebSocket transport`, () => {
    let child: ChildProcess;
    let url: string;
    let stderr = "";

    beforeAll(async () => {
      const [cmd, ...args] = RUNTIMES[runtime];
      child = spawn(cmd!, [...args.slice(0, -1), FIXTURE], { stdio: ["ignore", "pipe", "pipe"] });
      child.stderr!.on("data", (d) => (stderr += d));
      const port = await new Promise<number>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d) => {
          out += d;
          const m = /"port":(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.on("exit", (code) => reject(new Error(`fixture exited with ${code}: ${stderr}`)));
      });
      url = `ws://127.0.0.1:${port}/ws`;
    }, 30_000);
    afterAll(() => child?.kill());

    test("text and binary messages come in as framed chunks; frames written in parts go out as one text message each", async () => {
      const ws = await openWs(url);
      ws.sendText('{"hello":"wörld"}');
      expect(await ws.next()).toEqual({ hello: "wörld" });
      ws.sendBinary(new TextEncoder().encode("[1,2,3]"));
      expect(await ws.next()).toEqual([1, 2, 3]);
      ws.sendFragmented(['{"in":', '"three', ' parts"}']);
      expect(await ws.next()).toEqual({ in: "three parts" });
      ws.close();
      expect((await ws.closed).code).toBe(1000);
    });

    test("a reused buffer's frames arrive whole and as offered, past back-pressure and drain; then close code 1008", async () => {
      const ws = await openWs(url);
      ws.pause(); // a slow reader: the server's writes meet a full socket
      ws.sendText("flood 120");
      await new Promise((r) => setTimeout(r, 300));
      ws.resume();
      const close = await ws.closed;
      expect(ws.inbox.length).toBe(120);
      ws.inbox.forEach((text, n) => {
        const digit = String(n % 10);
        const wrong = [...text.slice(1, -1)].findIndex((c) => c !== digit);
        if (text.length !== 64 * 1024 || wrong >= 0) throw new Error(`message ${n}: length ${text.length}, char ${wrong} is ${text[wrong + 1]}`);
      });
      expect(close.code).toBe(1008);
    }, 30_000);

    for (const [kind, code] of [["normal", 1000], ["policy", 1008], ["too_big", 1009], ["going_away", 1001]] as const) {
      test(`end("${kind}") closes with ${code}`, async () => {
        const ws = await openWs(url);
        ws.sendText(`end ${kind}`);
        expect((await ws.closed).code).toBe(code);
      });
    }

    test("messages that arrive while reading is paused are handed over, in order, after resume", async () => {
      const ws = await openWs(url);
      ws.sendText("pause 300");
      await new Promise((r) => setTimeout(r, 100)); // reads of their own, made while paused
      for (let i = 0; i < 5; i++) ws.sendText(JSON.stringify({ i }));
      const got = [];
      for (let i = 0; i < 6; i++) got.push(await ws.next());
      expect(got).toEqual(["resumed", { i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
      ws.close();
    });

    // A paused connection stops reading the socket, so its sender meets back-pressure as on TCP.
    test("a paused connection stops reading: a message sent meanwhile waits in the socket and arrives after resume", async () => {
      const ws = await openWs(url);
      ws.sendText("cap");
      ws.sendText("pause 1000");
      await new Promise((r) => setTimeout(r, 200)); // a read of its own: not one the runtime had already made
      // Above the bound on what a paused connection holds: it is not held, it waits unread.
      ws.sendText(JSON.stringify("x".repeat(2000)));
      expect(await ws.next()).toBe("resumed");
      expect(await ws.next()).toBe("x".repeat(2000));
      ws.close();
    });

    test("a frame that breaks the protocol (unmasked from a client, a reserved bit set) closes the connection with 1002", async () => {
      for (const frame of [[0x81, 0x02, 0x68, 0x69], [0xc1, 0x82, 1, 2, 3, 4, 0x69, 0x6b]]) {
        const ws = await openWs(url);
        ws.socket.write(Buffer.from(frame));
        expect((await ws.closed).code).toBe(1002);
      }
    });

    test("admit refuses an upgrade with 403 and its reason; other requests reach fetch; a plain GET on the path gets 426", async () => {
      const refused = await openWs(url, { origin: "http://evil.example" }).catch((e) => e);
      expect(refused).toBeInstanceOf(UpgradeRefused);
      expect(refused.status).toBe(403);
      expect(refused.body).toBe("origin http://evil.example is not allowed\n");
      const base = url.replace("ws://", "http://").replace("/ws", "");
      expect(await (await fetch(`${base}/chat`)).text()).toBe("page /chat");
      const plain = await fetch(`${base}/ws`);
      expect(plain.status).toBe(426);
      expect(plain.headers.get("upgrade")).toBe("websocket");
    });
  });
}

describe("the runtime adapters' WebSocket dial, against a server of this test's own", () => {
  let server: ReturnType<typeof Bun.serve>;
  let stuck = -1;
  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request, srv) => (srv.upgrade(request, { data: undefined }) ? undefined : new Response("upgrade only", { status: 400 })),
      websocket: {
        message(ws, message) {
          const text = String(message);
          const [command, arg] = text.split(" ");
          if (command === "flood") {
            for (let n = 0; n < Number(arg); n++) ws.sendText(String(n % 10).repeat(64 * 1024));
            // What the client had not read a moment later: with its reading paused, most of it.
            setTimeout(() => (stuck = ws.getBufferedAmount()), 150);
          } else if (command === "stuck?") ws.sendText(String(stuck));
          else if (command === "close") ws.close(Number(arg), "as asked");
          else ws.sendText(text);
        },
      },
    });
  });
  afterAll(() => server?.stop(true));

  for (const runtime of ["bun", "deno"] as const) {
    test(`${runtime}: frames split across writes arrive as messages; a flood while paused arrives whole; the close code is the error`, async () => {
      const [cmd, ...args] = RUNTIMES[runtime];
      const child = spawn(cmd!, [...args.slice(0, -1), join(ROOT, "test/fixtures/runtime-websocket-dial.ts"), `ws://127.0.0.1:${server.port}/`], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      expect(await new Promise<number | null>((r) => child.on("exit", r))).toBe(0);
      const seen = JSON.parse(out);
      expect(seen).toEqual({ echoed: ['{"echo":"ünïcode ✓"}', '["second"]'], floodOk: true, stuck: expect.any(Number), closeError: "closed with code 1008 (as asked)" });
      // Paused reading held the server back, as on TCP (the sockets' buffers hold far less than 200 × 64 KiB).
      expect(seen.stuck).toBeGreaterThan(0);
    }, 30_000);
  }
});
