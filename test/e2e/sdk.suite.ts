/**
 * The public SDK and the commands built on it, against a real gateway running
 * under the runtime in test: the client SDK (in this test process), the
 * bundled handlers (SDK handlers, started by the gateway as `bester handler
 * NAME` under that runtime), and `bester send | client | handler` as processes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BesterClientError, connectClient, formatTarget, type BesterClient, type ClientTarget } from "../../src/sdk/client.ts";
import { type RunningGateway, runCli, startGateway, tempDir } from "../_harness/gateway.ts";
import { ROOT, RUNS_SCRIPTS, RUNTIMES, type RuntimeName } from "../_harness/runtimes.ts";
import { expectClosed, openWire } from "../_harness/wire.ts";

const bundled = (name: string, extra: object = {}) => ({
  bundled: name,
  unixDomainSocketPath: `${name}.sock`,
  envelope: true,
  ...extra,
});

const sdkConfig = {
  handlers: {
    availableTypes: ["echo", "chat", "shout", "bare-echo"],
    typeMap: {
      echo: bundled("echo"),
      chat: bundled("chat", { mode: "persistent" }),
      shout: bundled("shout"),
      // The same program without envelopes: it must explain what is missing.
      "bare-echo": { bundled: "echo", unixDomainSocketPath: "bare-echo.sock" },
    },
  },
};

/** A CLI process with stdin kept open, its output collected line by line. */
function startCli(runtime: RuntimeName, args: string[], env: Record<string, string> = {}) {
  const [cmd, ...pre] = RUNTIMES[runtime];
  const child: ChildProcess = spawn(cmd!, [...pre, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stdout = "";
  let stderr = "";
  const wakers: Array<() => void> = [];
  const wake = () => wakers.splice(0).forEach((w) => w());
  child.stdout!.on("data", (d) => ((stdout += d), wake()));
  child.stderr!.on("data", (d) => ((stderr += d), wake()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => (wake(), resolve(code))));
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    write: (text: string) => child.stdin!.write(text),
    /** Waits until stdout contains `text`. */
    async waitFor(text: string, ms = 15000) {
      const deadline = Date.now() + ms;
      while (!stdout.includes(text)) {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before printing ${text}\n${stdout}\n${stderr}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no '${text}' within ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wakers.push(() => (clearTimeout(t), r()));
        });
      }
    },
  };
}

/**
 * Runs the CLI on a pseudo-terminal (Python's pty: no TTY is available to the
 * test otherwise), types `answer` once it asks for the password, and returns
 * everything the terminal showed.
 */
const PTY_DRIVER = `
import json, os, pty, select, sys, time
answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out, asked, deadline = b"", False, time.time() + 30
while True:
    ready, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
    if not ready:
        break
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not asked and b"password for" in out:
        asked = True
        os.write(fd, answer.encode())
_, status = os.waitpid(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "output": out.decode(errors="replace")}))
`;

async function runOnTerminal(runtime: RuntimeName, args: string[], answer: string) {
  const child = spawn("python3", ["-c", PTY_DRIVER, answer, ...RUNTIMES[runtime], ...args], { stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout!.on("data", (d) => (stdout += d));
  await new Promise((resolve) => child.on("exit", resolve));
  return JSON.parse(stdout) as { code: number; output: string };
}

async function waitForFile(path: string, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The next delivered message, or a failure after `ms`. */
async function nextMessage(client: BesterClient, ms = 5000) {
  const it = client.messages();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      it.next().then((r) => (r.done ? undefined : r.value)),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no message within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function sdkSuite(runtime: RuntimeName) {
  describe(`${runtime}: sdk`, () => {
    let gw: RunningGateway;
    const clients: BesterClient[] = [];
    const connectAs = async (username: string, target: ClientTarget = gw.tcp4) => {
      const c = await connectClient({ target, username, password: "pw" });
      clients.push(c);
      return c;
    };

    beforeAll(async () => {
      gw = await startGateway(runtime, sdkConfig);
    });
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.close()));
      await gw?.stop();
    });

    describe("client SDK", () => {
      for (const kind of ["tcp4", "tcp6", "unix"] as const) {
        test(`${kind}: login, then dummy resolves good when the dummy reply comes`, async () => {
          const c = await connectAs(`dummy-${kind}`, gw[kind]);
          expect(await c.send("dummy")).toEqual({ id: "m-1", status: "good" });
        });
      }

      test("builtin ping is good; whoami's answer is on the report", async () => {
        const c = await connectAs("pinger");
        expect(await c.send("builtin", { command: { type: "ping" } })).toEqual({ id: "m-1", status: "good" });
        const who = await c.send("builtin", { command: { type: "whoami" } });
        expect(who.status).toBe("good");
        expect((who.data as { username: string }).username).toBe("pinger");
      });

      test("an unknown type gives a bad report carrying the server's error", async () => {
        const c = await connectAs("lost");
        const report = await c.send("no-such-type", { x: 1 });
        expect(report.status).toBe("bad");
        expect(report.error?.code).toBe("unknown_type");
        expect(report.error?.message).toContain("no-such-type");
      });

      test("many sends in flight resolve with their own reports, in order", async () => {
        const c = await connectAs("burst");
        const types = Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? "nope" : "dummy"));
        const reports = await Promise.all(types.map((t) => c.send(t)));
        reports.forEach((r, i) => {
          expect(r.id).toBe(`m-${i + 1}`);
          expect(r.status).toBe(types[i] === "nope" ? "bad" : "good");
        });
      });

      test("a refused login rejects connectClient with the server's error", async () => {
        const err = await connectClient({ target: gw.tcp4, username: "mallory", password: " " }).catch((e) => e);
        expect(err).toBeInstanceOf(BesterClientError);
        expect(err.code).toBe("auth_failed");
        expect(err.message).toContain("login refused for 'mallory'");
      });

      test("nothing listening: connect_failed naming the address", async () => {
        const target = { path: join(gw.dir, "nobody.sock") };
        const err = await connectClient({ target, username: "a", password: "b" }).catch((e) => e);
        expect(err.code).toBe("connect_failed");
        expect(err.message).toContain(formatTarget(target));
      });

      test("builtin close: the pending send rejects and closed resolves as closed by the server", async () => {
        const c = await connectAs("closer");
        const pending = c.send("builtin", { command: { type: "close" } });
        await expect(pending).rejects.toMatchObject({ code: "connection_closed" });
        expect(await c.closed).toEqual({ by: "server" });
        await expect(c.send("dummy")).rejects.toMatchObject({ code: "connection_closed" });
      });

      test("a fatal error: the pending send rejects with its code, closed carries it", async () => {
        const c = await connectAs("oversize");
        // Above the gateway's default 1 MiB frame limit.
        const pending = c.send("echo", "x".repeat(2 * 1024 * 1024));
        await expect(pending).rejects.toMatchObject({ code: "frame_too_large" });
        const info = await c.closed;
        expect(info.by).toBe("server");
        expect(info.fatal?.code).toBe("frame_too_large");
      });

      test("send() of a value JSON cannot carry rejects with a TypeError and the connection stays usable", async () => {
        const c = await connectAs("bigint");
        await expect(c.send("echo", 1n)).rejects.toBeInstanceOf(TypeError);
        expect((await c.send("dummy")).status).toBe("good");
      });

      test("close(): closed resolves as closed by the client, and the iteration of messages ends", async () => {
        const c = await connectAs("leaver");
        const drained = (async () => {
          for await (const _ of c.messages()) {
            // none expected
          }
          return "ended";
        })();
        expect(await c.close()).toEqual({ by: "client" });
        expect(await drained).toBe("ended");
      });
    });

    describe("bundled handlers through the gateway", () => {
      test("echo sends the data back to its sender", async () => {
        const c = await connectAs("echoer");
        expect(await c.send("echo", { n: 1, list: [true, null] })).toEqual({ id: "m-1", status: "good" });
        expect(await nextMessage(c)).toEqual({ type: "echo", data: { n: 1, list: [true, null] } });
      });

      test("messages delivered before anyone iterates are buffered, not lost", async () => {
        const c = await connectAs("buffered");
        for (let i = 0; i < 5; i++) expect((await c.send("echo", i)).status).toBe("good");
        const got: unknown[] = [];
        for await (const m of c.messages()) {
          got.push(m.data);
          if (got.length === 5) break;
        }
        expect(got).toEqual([0, 1, 2, 3, 4]);
      });

      test("acknowledged delivery: seqs, acks batched and at close, repeats dropped after a lost connection", async () => {
        const login = (ack: object | boolean, lastSeq?: number) =>
          connectClient({ target: gw.tcp4, username: "acker", password: "pw", ack, ...(lastSeq === undefined ? {} : { lastSeq }) });
        const first = await login(true);
        expect(first.delivery).toEqual({ ack: true, reset: true });
        await first.close();
        const alice = await connectAs("ack-sender");
        for (let i = 0; i < 3; i++) expect((await alice.send("chat", { to: "acker", body: `m${i}` })).queued).toEqual(["acker"]);
        // No acknowledgement by batch or timer: this connection will be lost before it acknowledges.
        const second = await login({ every: 1000, afterMs: 60_000 });
        expect(second.delivery).toEqual({ ack: true, reset: false });
        const got = [];
        for await (const m of second.messages()) {
          got.push([m.seq, (m.data as { body: string }).body]);
          if (got.length === 3) break;
        }
        expect(got).toEqual([[1, "m0"], [2, "m1"], [3, "m2"]]);
        expect(second.lastSeq).toBe(3);
        await second.send("builtin", { command: { type: "close" } }).catch(() => {});
        await second.closed;
        // The server sends 1-3 again; the SDK drops them as repeats (and acknowledges them): the next one is new.
        const third = await login(true, second.lastSeq);
        await alice.send("chat", { to: "acker", body: "new" });
        expect(await nextMessage(third)).toEqual({ type: "chat", data: { from: "ack-sender", body: "new" }, seq: 4 });
        await third.close();
        // All acknowledged: the next login's first message is a new one.
        const fourth = await login(true);
        await alice.send("chat", { to: "acker", body: "marker" });
        expect(await nextMessage(fourth)).toEqual({ type: "chat", data: { from: "ack-sender", body: "marker" }, seq: 5 });
        await fourth.close();
      });

      test("echo without an envelope says what is missing", async () => {
        const c = await connectAs("bare");
        const report = await c.send("bare-echo", 1);
        expect(report.status).toBe("bad");
        expect(report.error?.code).toBe("envelope_expected");
        expect(report.error?.message).toContain('"envelope": true');
      });

      test("chat delivers {from, body} to each recipient", async () => {
        const alice = await connectAs("alice");
        const bob = await connectAs("bob", gw.unix);
        const carol = await connectAs("carol", gw.tcp6);
        expect((await alice.send("chat", { to: ["bob", "carol"], body: "hi" })).status).toBe("good");
        expect(await nextMessage(bob)).toEqual({ type: "chat", data: { from: "alice", body: "hi" } });
        expect(await nextMessage(carol)).toEqual({ type: "chat", data: { from: "alice", body: "hi" } });
      });

      test("chat refuses a bad shape with a precise message", async () => {
        const c = await connectAs("sloppy");
        const noTo = await c.send("chat", { body: "hi" });
        expect(noTo.error).toEqual({ code: "bad_request", message: "data.to: expected a username or a non-empty list of usernames, got nothing" });
        const numBody = await c.send("chat", { to: "bob", body: 5 });
        expect(numBody.error).toEqual({ code: "bad_request", message: "data.body: expected a string, got 5" });
      });

      test("shout passes to chat with sendHandler; chat still names the original sender", async () => {
        const dave = await connectAs("dave");
        const erin = await connectAs("erin");
        expect((await dave.send("shout", { to: "erin", body: "quiet please" })).status).toBe("good");
        expect(await nextMessage(erin)).toEqual({ type: "chat", data: { from: "dave", body: "QUIET PLEASE" } });
      });
    });

    describe("bester send", () => {
      const at = () => formatTarget(gw.tcp4);

      test("dummy: the report as JSON on stdout, exit 0", async () => {
        const r = await runCli(runtime, ["send", "--user", "cli", "--password", "pw", "--connect", at(), "dummy"]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)).toEqual({ id: "m-1", status: "good" });
      });

      test("--ack: what waited comes first with its seq, and is acknowledged: the next run gets nothing again", async () => {
        const cli = (...args: string[]) => runCli(runtime, ["send", "-u", "inbox-cli", "-p", "pw", "-c", at(), ...args]);
        expect((await cli("dummy")).code).toBe(0); // known from now on
        const sender = await connectAs("cli-sender");
        const queued = await sender.send("chat", { to: "inbox-cli", body: "while you were away" });
        expect(queued.queued).toEqual(["inbox-cli"]);
        const first = await cli("--ack", "--wait", "300", "dummy");
        expect(first.code).toBe(0);
        expect(first.stdout.trim().split("\n").map((l) => JSON.parse(l))).toEqual([
          { id: "m-1", status: "good" },
          { type: "chat", data: { from: "cli-sender", body: "while you were away" }, seq: 1 },
        ]);
        const second = await cli("--ack", "--wait", "300", "dummy");
        expect(second.stdout.trim().split("\n")).toEqual(['{"id":"m-1","status":"good"}']);
      });

      test("an unknown type: the bad report on stdout, exit 1", async () => {
        const r = await runCli(runtime, ["send", "-u", "cli", "-p", "pw", "-c", formatTarget(gw.unix), "nope", '{"a":1}']);
        expect(r.code).toBe(1);
        const report = JSON.parse(r.stdout);
        expect(report.status).toBe("bad");
        expect(report.error.code).toBe("unknown_type");
      });

      test("--wait prints the report, then what was delivered, one JSON line each", async () => {
        const r = await runCli(runtime, ["send", "-u", "cli", "-p", "pw", "-c", formatTarget(gw.tcp6), "--wait", "300", "echo", '{"hello":[1,2]}']);
        expect(r.code).toBe(0);
        const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
        expect(lines).toEqual([{ id: "m-1", status: "good" }, { type: "echo", data: { hello: [1, 2] } }]);
      });

      test("invalid JSON is a usage error saying so, exit 2", async () => {
        const r = await runCli(runtime, ["send", "-u", "cli", "-p", "pw", "-c", at(), "echo", "{nope"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("not valid JSON");
        expect(r.stdout).toBe("");
      });

      test("no password and no terminal: a clear error, exit 2", async () => {
        const r = await runCli(runtime, ["send", "-u", "cli", "-c", at(), "dummy"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("no password: give --password, set BESTER_PASSWORD");
      });

      test("BESTER_PASSWORD is used when --password is not given", async () => {
        const p = startCli(runtime, ["send", "-u", "envy", "-c", at(), "dummy"], { BESTER_PASSWORD: "pw" });
        p.child.stdin!.end();
        expect(await p.exited).toBe(0);
        expect(JSON.parse(p.stdout())).toEqual({ id: "m-1", status: "good" });
      });

      test("on a terminal it asks for the password without echoing it", async () => {
        const args = ["send", "-u", "tty", "-c", at(), "dummy"];
        const typed = await runOnTerminal(runtime, args, "s3cret\r");
        expect(typed.code).toBe(0);
        expect(typed.output).toContain("password for tty: ");
        expect(typed.output).toContain('{"id":"m-1","status":"good"}');
        expect(typed.output).not.toContain("s3cret");
        // Typed then erased: an empty password, which the server refuses; so what was typed is what is sent.
        const erased = await runOnTerminal(runtime, args, "x\u007f\r");
        expect(erased.code).toBe(1);
        expect(erased.output).toContain("auth_failed");
      });

      test("a refused login or an unreachable server: why on stderr, exit 1", async () => {
        const refused = await runCli(runtime, ["send", "-u", "cli", "-p", " ", "-c", at(), "dummy"]);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain("auth_failed");
        const nobody = await runCli(runtime, ["send", "-u", "cli", "-p", "pw", "-c", `unix:${join(gw.dir, "none.sock")}`, "dummy"]);
        expect(nobody.code).toBe(1);
        expect(nobody.stderr).toContain("cannot connect to unix:");
      });

      test("a bad --connect address is a usage error naming the accepted forms", async () => {
        const r = await runCli(runtime, ["send", "-u", "cli", "-p", "pw", "-c", "localhost", "dummy"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("HOST:PORT");
      });
    });

    describe("bester client", () => {
      test("chat lines go out, deliveries and bad reports come in, /quit exits 0", async () => {
        const bob = startCli(runtime, ["client", "-u", "bobcli", "-p", "pw", "-c", formatTarget(gw.unix)]);
        const alice = startCli(runtime, ["client", "-u", "alicecli", "-p", "pw", "-c", formatTarget(gw.tcp4)]);
        // A whoami round trip proves each is logged in before the chat is sent.
        bob.write('/send builtin {"command":{"type":"whoami"}}\n');
        await bob.waitFor('"username":"bobcli"');
        alice.write('/send builtin {"command":{"type":"whoami"}}\n');
        await alice.waitFor('"username":"alicecli"');
        alice.write("@bobcli,nobody hello there\n");
        await bob.waitFor("alicecli: hello there");
        alice.write("/send echo [1]\n/send nope 2\n");
        await alice.waitFor("[echo] [1]");
        await alice.waitFor("! m-4 unknown_type:");
        alice.write("/quit\n");
        bob.child.stdin!.end();
        expect(await alice.exited).toBe(0);
        expect(await bob.exited).toBe(0);
      });

      test("lines it cannot read are explained on stderr and the session goes on", async () => {
        const c = startCli(runtime, ["client", "-u", "typo", "-p", "pw", "-c", formatTarget(gw.tcp4)]);
        c.write("hello?\n/send echo {bad\n/send echo 7\n");
        await c.waitFor("[echo] 7");
        c.child.stdin!.end();
        expect(await c.exited).toBe(0);
        expect(c.stderr()).toContain("! not understood");
        expect(c.stderr()).toContain("! not valid JSON");
      });

      test("a fatal close by the server is printed, exit 1", async () => {
        // The gateway's SIGTERM sends every client a fatal shutting_down: use a gateway of its own.
        const own = await startGateway(runtime);
        const c = startCli(runtime, ["client", "-u", "victim", "-p", "pw", "-c", formatTarget(own.tcp4)]);
        c.write('/send builtin {"command":{"type":"ping"}}\n/send builtin {"command":{"type":"whoami"}}\n');
        await c.waitFor('"username":"victim"');
        await own.stop();
        expect(await c.exited).toBe(1);
        expect(c.stdout()).toContain("! closed: shutting_down:");
      });
    });

    describe("bester handler", () => {
      test("echo serves raw frames on its socket; SIGTERM removes the socket and exits 0", async () => {
        const dir = tempDir("bester-handler-");
        const socket = join(dir, "echo.sock");
        const h = startCli(runtime, ["handler", "echo", socket]);
        await waitForFile(socket);
        for (const n of [1, 2]) {
          const wire = await openWire({ path: socket });
          wire.send({ data: { n }, meta: { from: "zoe", scope: "client", id: `m-${n}`, type: "echo", via: [] } });
          expect(await wire.next()).toEqual({ header: { status: "0", command: { type: "sendClients", data: ["zoe"] } }, data: { n } });
          wire.close();
        }
        // Persistent mode: one connection, several requests written at once.
        const kept = await openWire({ path: socket });
        for (const n of [3, 4, 5]) kept.send({ data: n, meta: { from: "zoe", scope: "client", id: "x", type: "echo", via: [] } });
        expect([(await kept.next()).data, (await kept.next()).data, (await kept.next()).data]).toEqual([3, 4, 5]);
        h.child.kill("SIGTERM");
        expect(await h.exited).toBe(0);
        await expectClosed(kept);
        expect(existsSync(socket)).toBe(false);
        rmSync(dir, { recursive: true, force: true });
      });

      test("Ctrl-C in a terminal: SIGINT, then the gateway's SIGTERM right after, is one stop (exit 0)", async () => {
        const dir = tempDir("bester-handler-");
        const socket = join(dir, "chat.sock");
        const h = startCli(runtime, ["handler", "chat", socket]);
        await waitForFile(socket);
        h.child.kill("SIGINT");
        await new Promise((r) => setTimeout(r, 50));
        h.child.kill("SIGTERM");
        expect(await h.exited).toBe(0);
        expect(existsSync(socket)).toBe(false);
        rmSync(dir, { recursive: true, force: true });
      });

      // A handler file as its own entry point; the binary runs only its compiled entry (RUNS_SCRIPTS).
      test.skipIf(!RUNS_SCRIPTS[runtime])("a handler file run directly (runHandlerMain): socket from BESTER_HANDLER_SOCKET, in_use refused, SIGTERM exits 0", async () => {
        const dir = tempDir("bester-handler-");
        const socket = join(dir, "chat.sock");
        // The runtime's own argv without src/main.ts: the handler file is the entry point.
        const [cmd, ...pre] = RUNTIMES[runtime].slice(0, -1);
        const run = (env: Record<string, string>, ...args: string[]) => {
          const child = spawn(cmd!, [...pre, join(ROOT, "handlers/chat.ts"), ...args], {
            stdio: ["ignore", "ignore", "pipe"],
            env: { ...process.env, ...env },
          });
          let stderr = "";
          child.stderr!.on("data", (d) => (stderr += d));
          const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
          return { child, exited, stderr: () => stderr };
        };
        const h = run({ BESTER_HANDLER_SOCKET: socket, BESTER_HANDLER_TYPE: "chat" });
        await waitForFile(socket);
        const wire = await openWire({ path: socket });
        wire.send({ data: { to: "bob", body: "direct" }, meta: { from: "amy", scope: "client", id: "m-1", type: "chat", via: [] } });
        expect((await wire.next()).data).toEqual({ from: "amy", body: "direct" });
        wire.close();

        const second = run({}, socket);
        expect(await second.exited).toBe(1);
        expect(second.stderr()).toContain("is in use");
        const none = run({ BESTER_HANDLER_SOCKET: "" });
        expect(await none.exited).toBe(2);
        expect(none.stderr()).toContain("no socket path");

        h.child.kill("SIGTERM");
        expect(await h.exited).toBe(0);
        expect(existsSync(socket)).toBe(false);
        rmSync(dir, { recursive: true, force: true });
      });

      test("an unknown name is a usage error listing the names, exit 2", async () => {
        const r = await runCli(runtime, ["handler", "ekko", "/tmp/unused.sock"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("unknown handler 'ekko': expected one of echo, chat, shout");
      });
    });
  });
}
