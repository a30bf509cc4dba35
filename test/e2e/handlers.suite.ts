/**
 * The core message flow with real handler processes: client → handler →
 * sendClients / sendHandler, every failure of a handler, ordering, fan-in
 * load, slow consumers. The handler is test/fixtures/handlers/scripted.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { BUN, SCRIPTED, scripted } from "../_harness/handlers.ts";
import { ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { authFrame, frame, login, openWire, type Wire } from "../_harness/wire.ts";


export const handlerConfig = {
  handlers: {
    availableTypes: ["script", "piped", "env", "ghost"],
    typeMap: {
      script: scripted("script.sock", { timeoutMs: 1500 }),
      piped: scripted("piped.sock", { mode: "persistent", connections: 2, timeoutMs: 1500 }),
      env: scripted("env.sock", { envelope: true }),
      // No program and nothing listening: an external handler that is down.
      ghost: { unixDomainSocketPath: "ghost.sock" },
    },
  },
  limits: { maxHandlerHops: 3, maxFrameBytes: 16384, maxPendingBytes: 65536 },
};

const msg = (type: string, id: string, data: unknown) => ({ payload: { type, id, data } });

async function report(wire: Wire, id: string) {
  const r = await wire.next();
  expect(r.payload?.id).toBe(id);
  expect(r.header?.messageType).toBe("statusReport");
  return r;
}

export function handlerSuite(runtime: RuntimeName) {
  describe(`${runtime}: handlers`, () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGateway(runtime, handlerConfig);
    });
    afterAll(async () => {
      await gw?.stop();
    });

    test("sendClients reaches the named user, and the sender gets good", async () => {
      const alice = await login(gw.tcp4, "alice");
      const bob = await login(gw.unix, "bob");
      alice.send(msg("script", "m1", { do: "deliver", to: ["bob"], body: { text: "hi bob" } }));
      expect(await bob.next()).toEqual({
        header: { messageType: "receivedMessage" },
        payload: { data: { text: "hi bob" }, type: "script" },
      });
      expect(await report(alice, "m1")).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "m1" } });
      alice.close();
      bob.close();
    });

    test("every session of a user connected twice receives it", async () => {
      const alice = await login(gw.tcp4, "alice2");
      const phone = await login(gw.tcp6, "bob2");
      const laptop = await login(gw.unix, "bob2");
      alice.send(msg("piped", "m2", { do: "deliver", to: ["bob2"], body: 42 }));
      expect((await phone.next()).payload).toEqual({ data: 42, type: "piped" });
      expect((await laptop.next()).payload).toEqual({ data: 42, type: "piped" });
      expect((await report(alice, "m2")).header.status).toBe("good");
      for (const w of [alice, phone, laptop]) w.close();
    });

    test("a user who is offline: good, and the report names who was not reached", async () => {
      const alice = await login(gw.tcp4, "alice3");
      alice.send(msg("script", "m3", { do: "deliver", to: ["nobody-here", "alice3"], body: "x" }));
      expect((await alice.next()).header.messageType).toBe("receivedMessage");
      const r = await report(alice, "m3");
      expect(r.header.status).toBe("good");
      expect(r.header.undelivered).toEqual(["nobody-here"]);
      alice.close();
    });

    test("the first frame's payload is dispatched too", async () => {
      const wire = await openWire(gw.tcp4);
      wire.send(authFrame("first", "pw", { type: "script", id: "f1", data: { do: "deliver", to: ["first"], body: "early" } }));
      expect((await wire.next()).payload.id).toBe("auth_special");
      expect((await wire.next()).payload.data).toBe("early");
      expect((await report(wire, "f1")).header.status).toBe("good");
      wire.close();
    });

    test("envelope: the handler learns who sent the message", async () => {
      const alice = await login(gw.tcp4, "alice4");
      alice.send(msg("env", "e1", { do: "whoami" }));
      const got = await alice.next();
      expect(got.payload.type).toBe("env");
      expect(got.payload.data.meta).toEqual({ from: "alice4", scope: "client", id: "e1", type: "env", via: [] });
      expect((await report(alice, "e1")).header.status).toBe("good");
      alice.close();
    });

    describe("data passes through unchanged in value, small or large (large frames pass their text on)", () => {
      // Spacing, escapes, a repeated key (the last one counts) and 1.50 (a number
      // JSON.stringify would write as 1.5): the value must survive; for a large
      // frame the text itself goes on as it arrived.
      const dataText = (pad: number) =>
        `{ "k" : 1,\n "k": 2, "esc": "q\\"uote \\u00e9 \\\\", "n": 1.50, "list": [ true, null, {"x": []} ], "pad": "${"p".repeat(pad)}" }`;
      for (const [label, pad] of [["small", 10], ["large", 3000]] as const) {
        test(`${label}: what the client wrote reaches the handler`, async () => {
          const alice = await login(gw.tcp4, `raw-${label}`);
          const text = dataText(pad);
          const message = `{"payload":{"type":"script","id":"r1","data":{"do":"raw","to":["raw-${label}"],"data":${text}}}}`;
          const body = new TextEncoder().encode(message);
          const head = new Uint8Array(4);
          new DataView(head.buffer).setUint32(0, body.length, true);
          alice.sendRaw(new Uint8Array([...head, ...body]));
          const got = await alice.next();
          const received = got.payload.data.raw as string;
          expect(JSON.parse(received)).toEqual(JSON.parse(message).payload.data);
          if (label === "large") expect(received).toContain(text);
          expect((await report(alice, "r1")).header.status).toBe("good");
          alice.close();
        });

        test(`${label}: what the handler wrote reaches the client`, async () => {
          const alice = await login(gw.tcp4, `raw2-${label}`);
          const text = dataText(pad);
          alice.send(msg("script", "r2", { do: "answer-text", to: [`raw2-${label}`], text }));
          const got = await alice.next();
          expect(got.payload).toEqual({ data: JSON.parse(text), type: "script" });
          expect(got.payload.data.k).toBe(2);
          expect((await report(alice, "r2")).header.status).toBe("good");
          alice.close();
        });
      }
    });

    test("a long builtin message (its data kept as text by the decoder) is read like a short one", async () => {
      const wire = await login(gw.tcp4, "lena");
      const note = "n".repeat(3000);
      wire.send({ payload: { type: "builtin", id: "lp", data: { command: { type: "ping" }, note } } });
      expect(await wire.next()).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "lp" } });
      wire.send({ payload: { type: "builtin", id: "lq", data: { command: { type: "nope" }, note } } });
      expect((await wire.next()).header.error.code).toBe("unknown_builtin");
      wire.send({ payload: { type: "builtin", id: "lr", data: { note } } });
      const bad = await wire.next();
      expect(bad.header.error).toMatchObject({ code: "malformed_message" });
      expect(bad.header.error.message).toBe("payload.data.command: expected an object, got nothing");
      wire.close();
    });

    test("the early spec's answer shape (command string, commandData, payload.data) works", async () => {
      const alice = await login(gw.tcp4, "alice5");
      alice.send(msg("script", "o1", { do: "old-shape", to: ["alice5"], body: { old: true } }));
      expect((await alice.next()).payload).toEqual({ data: { old: true }, type: "script" });
      expect((await report(alice, "o1")).header.status).toBe("good");
      // A long one: its payload.data is passed on as text.
      const body = { old: true, pad: "o".repeat(3000), n: [1, 2.5] };
      alice.send(msg("script", "o2", { do: "old-shape", to: ["alice5"], body }));
      expect((await alice.next()).payload).toEqual({ data: body, type: "script" });
      expect((await report(alice, "o2")).header.status).toBe("good");
      alice.close();
    });

    test('a status of the number 0 is success like "0"; any other number or string is failure, named (docs/HANDLERS.md)', async () => {
      const alice = await login(gw.tcp4, "alice-status");
      alice.send(msg("script", "n0", { do: "status", status: 0, to: ["alice-status"], body: "zero" }));
      expect((await alice.next()).payload.data).toBe("zero");
      expect((await report(alice, "n0")).header.status).toBe("good");
      for (const [id, status, named] of [["n1", 1, '"1"'], ["s00", "00", '"00"'], ["sok", "ok", '"ok"']] as const) {
        alice.send(msg("script", id, { do: "status", status, to: ["alice-status"], body: "never" }));
        const r = await report(alice, id);
        expect(r.header.error.code).toBe("handler_failed");
        expect(r.header.error.message).toContain(`status ${named}`);
      }
      alice.send(msg("script", "nb", { do: "status", status: false, to: ["alice-status"] }));
      const malformed = await report(alice, "nb");
      expect(malformed.header.error.message).toMatch(/header\.status: expected a string \("0" for success\) or a number, got false/);
      alice.close();
    });

    describe("a failing handler gets the sender a bad report, and nothing else is disturbed", () => {
      const cases: Array<[string, object, string, RegExp]> = [
        ["its own error", { do: "fail" }, "quota", /over quota/],
        ["a non-zero status", { do: "fail-plain" }, "handler_failed", /status "7"/],
        ["garbage bytes", { do: "garbage" }, "handler_failed", /not valid JSON/],
        ["JSON of the wrong shape", { do: "notjson-shape" }, "handler_failed", /malformed answer/],
        ["closing without an answer", { do: "close" }, "handler_failed", /closed the connection/],
        ["no answer in time", { do: "slow", ms: 4000 }, "handler_timeout", /within 1500 ms/],
        ["an unknown command", { do: "teleport" }, "bad_command", /unknown command "teleport"/],
        ["sendServers to a server that is not a configured peer", { do: "servers" }, "peer_failed", /127\.0\.0\.1:1 \(unknown_peer/],
      ];
      for (const [name, data, code, text] of cases) {
        test(name, async () => {
          const alice = await login(gw.tcp4, "sender");
          const bystander = await login(gw.tcp4, "bystander");
          alice.send(msg("script", "x1", data));
          bystander.send(msg("script", "b1", { do: "deliver", to: ["bystander"], body: "fine" }));
          expect((await bystander.next()).payload.data).toBe("fine");
          expect((await report(bystander, "b1")).header.status).toBe("good");
          const r = await report(alice, "x1");
          expect(r.header.status).toBe("bad");
          expect(r.header.error.code).toBe(code);
          expect(r.header.error.message).toMatch(text);
          alice.send(msg("dummy", "after", null));
          expect((await alice.next()).payload.id).toBe("after");
          alice.close();
          bystander.close();
        });
      }
    });

    test("per-message mode: requests sent at different times each time out on their own deadline", async () => {
      const first = await login(gw.tcp4, "late1");
      const second = await login(gw.tcp4, "late2");
      first.send(msg("script", "s1", { do: "slow", ms: 4000 }));
      // Later, so its deadline is after the first one's: the link's timer must be set again for it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      second.send(msg("script", "s2", { do: "slow", ms: 4000, to: ["late2"], body: "too late" }));
      for (const [client, id] of [[first, "s1"], [second, "s2"]] as const) {
        const r = await report(client, id);
        expect(r.header.status).toBe("bad");
        expect(r.header.error.code).toBe("handler_timeout");
      }
      first.close();
      second.close();
    });

    test("persistent mode: a timeout fails what waits behind it on that connection, then a new one serves", async () => {
      const alice = await login(gw.tcp4, "patient");
      alice.send(msg("piped", "stuck", { do: "slow", ms: 4000 }));
      alice.send(msg("piped", "quick", { do: "deliver", to: ["patient"], body: "ok" }));
      // In arrival order: stuck's report first; quick's delivery waits for its turn, then its report.
      const stuck = await report(alice, "stuck");
      expect(stuck.header.status).toBe("bad");
      expect(stuck.header.error.code).toBe("handler_timeout");
      expect(stuck.header.error.message).toContain("within 1500 ms");
      expect((await alice.next()).payload.data).toBe("ok");
      expect((await report(alice, "quick")).header.status).toBe("good");
      alice.send(msg("piped", "later", { do: "deliver", to: ["patient"], body: "after" }));
      expect((await alice.next()).payload.data).toBe("after");
      expect((await report(alice, "later")).header.status).toBe("good");
      alice.close();
    });

    test("an external handler that is down: handler_unavailable", async () => {
      const alice = await login(gw.tcp4, "alice6");
      alice.send(msg("ghost", "g1", 1));
      const r = await report(alice, "g1");
      expect(r.header.error.code).toBe("handler_unavailable");
      alice.close();
    });

    test("sendHandler passes the answer on; the next handler sees the chain in via", async () => {
      const alice = await login(gw.tcp4, "alice7");
      alice.send(msg("script", "h1", { do: "forward", next: "env", payload: { do: "whoami" } }));
      const got = await alice.next();
      expect(got.payload.type).toBe("env");
      expect(got.payload.data.meta).toMatchObject({ from: "alice7", id: "h1", type: "env", via: ["script"] });
      expect((await report(alice, "h1")).header.status).toBe("good");
      alice.close();
    });

    test("a sendHandler cycle ends at the hop limit", async () => {
      const alice = await login(gw.tcp4, "alice8");
      let data: object = { do: "deliver", to: ["alice8"], body: "unreachable" };
      for (let i = 0; i < 6; i++) data = { do: "forward", next: "script", payload: data };
      alice.send(msg("script", "loop", data));
      const r = await report(alice, "loop");
      expect(r.header.status).toBe("bad");
      expect(r.header.error.code).toBe("hop_limit");
      expect(r.header.error.message).toContain("script -> script -> script -> script");
      alice.close();
    });

    test("sendHandler to a type that does not exist: bad_command", async () => {
      const alice = await login(gw.tcp4, "alice9");
      alice.send(msg("script", "n1", { do: "forward", next: "nope", payload: 1 }));
      expect((await report(alice, "n1")).header.error.code).toBe("bad_command");
      alice.close();
    });

    test("200 messages on one connection: reports and deliveries keep their order", async () => {
      const alice = await login(gw.tcp4, "orderly");
      const ids = Array.from({ length: 200 }, (_, i) => `o${i}`);
      alice.sendRaw(
        Buffer.concat(ids.map((id, i) => frame(msg("script", id, { do: "deliver", to: ["orderly"], body: i })))),
      );
      const reports: string[] = [];
      const delivered: number[] = [];
      while (reports.length < 200) {
        const f = await alice.next(10000);
        if (f.header.messageType === "statusReport") reports.push(f.payload.id);
        else delivered.push(f.payload.data);
      }
      while (delivered.length < 200) delivered.push((await alice.next()).payload.data);
      expect(reports).toEqual(ids);
      expect(delivered).toEqual(ids.map((_, i) => i));
      alice.close();
    });

    test("50 clients × 20 messages through a persistent handler: nothing lost or duplicated", async () => {
      const sink = await login(gw.tcp4, "sink");
      const senders = await Promise.all(Array.from({ length: 50 }, (_, i) => login(i % 2 ? gw.unix : gw.tcp4, `c${i}`)));
      senders.forEach((w, i) =>
        w.sendRaw(
          Buffer.concat(
            Array.from({ length: 20 }, (_, n) => frame(msg("piped", `c${i}-${n}`, { do: "deliver", to: ["sink"], body: `c${i}-${n}` }))),
          ),
        ),
      );
      const seen = new Set<string>();
      for (let k = 0; k < 1000; k++) {
        const body = (await sink.next(15000)).payload.data;
        expect(seen.has(body)).toBe(false);
        seen.add(body);
      }
      expect(seen.size).toBe(1000);
      for (const [i, w] of senders.entries()) {
        for (let n = 0; n < 20; n++) {
          const r = await w.next(15000);
          expect(r.payload.id).toBe(`c${i}-${n}`);
          expect(r.header.status).toBe("good");
        }
        w.close();
      }
      sink.close();
    });

    test("a client that never reads is closed as a slow consumer; the sender carries on", async () => {
      const lazy = await login(gw.tcp4, "lazy");
      lazy.socket.pause(); // stops reading: the kernel buffers fill, then the gateway's
      const alice = await login(gw.tcp4, "flooder");
      const body = "x".repeat(8000);
      const total = 2000; // ~16 MB offered, far past the kernel buffers and the 64 KiB limit
      for (let i = 0; i < total; i += 100) {
        alice.sendRaw(
          Buffer.concat(
            Array.from({ length: 100 }, (_, k) => frame(msg("piped", `f${i + k}`, { do: "deliver", to: ["lazy"], body }))),
          ),
        );
      }
      const codes = new Map<string, number>();
      let queued = 0;
      for (let i = 0; i < total; i++) {
        const r = await alice.next(20000);
        expect(r.payload.id).toBe(`f${i}`);
        if (r.header.status === "bad") codes.set(r.header.error.code, (codes.get(r.header.error.code) ?? 0) + 1);
        else if (r.header.queued !== undefined) queued++;
      }
      await gw.waitForLog((r) => r.msg === "connection closed" && r.user === "lazy" && r.reason === "slow_consumer");
      // Once cut off, later deliveries find no session: they wait in lazy's inbox (good, queued)
      // until it is full, and are refused by name after that; at most the one being written was lost with the session.
      expect(codes.get("delivery_failed") ?? 0).toBeLessThanOrEqual(1);
      expect(queued).toBeGreaterThan(0);
      expect([...codes.keys()].filter((c) => c !== "delivery_failed" && c !== "inbox_full")).toEqual([]);
      alice.send(msg("dummy", "still", null));
      expect((await alice.next()).payload.id).toBe("still");
      alice.close();
      lazy.close();
    });
  });

  describe(`${runtime}: handler supervision`, () => {
    test("a handler that dies with requests in flight: each gets bad, then it is restarted", async () => {
      const gw = await startGateway(runtime, handlerConfig);
      try {
        const alice = await login(gw.tcp4, "alice");
        alice.send(msg("piped", "p0", { do: "pid", to: ["alice"] }));
        const firstPid = (await alice.next()).payload.data.pid;
        await report(alice, "p0");
        alice.sendRaw(
          Buffer.concat([
            frame(msg("piped", "s1", { do: "slow", ms: 1000 })),
            frame(msg("piped", "s2", { do: "slow", ms: 1000 })),
            frame(msg("piped", "die", { do: "die", afterMs: 100 })),
          ]),
        );
        for (const id of ["s1", "s2", "die"]) {
          const r = await report(alice, id);
          expect(r.header.status).toBe("bad");
          expect(["handler_failed", "handler_timeout"]).toContain(r.header.error.code);
        }
        await gw.waitForLog((r) => r.msg === "handler exited" && r.handler === "piped" && r.code === 3);
        await gw.waitForLog((r) => r.msg === "handler up" && r.handler === "piped" && r.pid !== firstPid);
        alice.send(msg("piped", "p1", { do: "pid", to: ["alice"] }));
        const secondPid = (await alice.next()).payload.data.pid;
        expect(secondPid).not.toBe(firstPid);
        expect((await report(alice, "p1")).header.status).toBe("good");
        alice.close();
      } finally {
        await gw.stop();
      }
    });

    test("handlers are stopped with the gateway and their sockets removed", async () => {
      const gw = await startGateway(runtime, handlerConfig);
      const pids = gw.records().filter((r) => r.msg === "handler up").map((r) => r.pid);
      expect(pids.length).toBe(3);
      expect(await gw.stop()).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    });

    test("the Python example, written to the original protocol, works unchanged", async () => {
      const gw = await startGateway(runtime, {
        handlers: {
          availableTypes: ["reverse"],
          typeMap: {
            reverse: {
              handlerBinary: join(ROOT, "handlers/examples/python-reverse/handler.py"),
              unixDomainSocketPath: "reverse.sock",
            },
          },
        },
      });
      try {
        const alice = await login(gw.tcp4, "alice");
        const bob = await login(gw.tcp6, "bob");
        alice.send(msg("reverse", "r1", { to: ["bob"], text: "hello" }));
        expect((await bob.next()).payload).toEqual({ data: { reversed: "olleh" }, type: "reverse" });
        expect((await report(alice, "r1")).header.status).toBe("good");
        alice.send(msg("reverse", "r2", { text: 42 }));
        const r = await report(alice, "r2");
        expect(r.header.status).toBe("bad");
        expect(r.header.error.code).toBe("bad_request");
        alice.close();
        bob.close();
      } finally {
        expect(await gw.stop()).toBe(0);
      }
    });

    test("handler output goes to the log with the handler's name", async () => {
      const gw = await startGateway(runtime, {
        handlers: {
          availableTypes: ["talky"],
          typeMap: {
            talky: {
              handlerBinary: "/bin/sh",
              handlerArgs: ["-c", 'echo "hello from $BESTER_HANDLER_TYPE" >&2; exec "$0" "$@"', BUN, SCRIPTED],
              unixDomainSocketPath: "talky.sock",
            },
          },
        },
      });
      try {
        const rec = await gw.waitForLog((r) => r.msg === "hello from talky");
        expect(rec.handler).toBe("talky");
        expect(rec.stream).toBe("stderr");
      } finally {
        await gw.stop();
      }
    });
  });
}
