/**
 * handlers/examples/python-reverse: a handler in another language, speaking
 * the original protocol (one frame per connection, no envelope). Driven first
 * the way the gateway drives it, then through a real gateway.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { connectClient } from "../../src/sdk/client.ts";
import { removeTempDirs, startGateway, tempDir } from "../_harness/gateway.ts";
import { ROOT } from "../_harness/runtimes.ts";
import { expectClosed, frameText, openWire } from "../_harness/wire.ts";

const HANDLER = join(ROOT, "handlers/examples/python-reverse/handler.py");

async function waitForFile(path: string, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One request on its own connection, as the gateway's per-message mode does it. */
async function ask(socket: string, data: unknown) {
  const wire = await openWire({ path: socket });
  wire.send(data);
  const answer = await wire.next();
  await expectClosed(wire);
  return answer;
}

describe("python-reverse handler", () => {
  let dir: string;
  let socket: string;
  let child: ChildProcess;
  let exited: Promise<number | null>;

  beforeAll(async () => {
    dir = tempDir("bester-py-");
    socket = join(dir, "reverse.sock");
    // Under umask 000, so the socket's mode is the handler's doing.
    child = spawn("/bin/sh", ["-c", 'umask 000 && exec python3 "$@"', "sh", HANDLER, socket], { stdio: ["ignore", "ignore", "pipe"] });
    exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    await waitForFile(socket);
  });
  afterAll(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("its socket is 0600 whatever the umask: only the gateway's user may connect", () => {
    expect((statSync(socket).mode & 0o777).toString(8)).toBe("600");
  });

  test("answers one frame per connection with sendClients and the reversed text, then closes", async () => {
    expect(await ask(socket, { to: ["bob", "carol"], text: "hello" })).toEqual({
      header: { status: "0", command: { type: "sendClients", data: ["bob", "carol"] } },
      data: { reversed: "olleh" },
    });
    expect((await ask(socket, { to: ["x"], text: "åbc" })).data).toEqual({ reversed: "cbå" });
  });

  test("a request of the wrong shape gets status 1 with header.error", async () => {
    const answer = await ask(socket, { text: 5 });
    expect(answer.header.status).toBe("1");
    expect(answer.header.error.code).toBe("bad_request");
  });

  test("a broken request costs only its own connection", async () => {
    const wire = await openWire({ path: socket });
    wire.sendRaw(frameText("{oops"));
    await expectClosed(wire);
    expect((await ask(socket, { to: ["bob"], text: "ok" })).data).toEqual({ reversed: "ko" });
  });

  test("SIGTERM: exit 0 and the socket file is gone", async () => {
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });
});

describe("python-reverse handler behind a real gateway", () => {
  test("the gateway starts it, and a client's message reaches the named user reversed", async () => {
    const gw = await startGateway("bun", {
      handlers: {
        availableTypes: ["reverse"],
        // The script itself is the program (its #! line finds python3), as the README's config shows.
        typeMap: { reverse: { handlerBinary: HANDLER, unixDomainSocketPath: "reverse.sock" } },
      },
    });
    try {
      const bob = await connectClient({ target: gw.unix, username: "bob", password: "pw" });
      const alice = await connectClient({ target: gw.tcp4, username: "alice", password: "pw" });
      expect(await alice.send("reverse", { to: ["bob"], text: "stressed" })).toEqual({ id: "m-1", status: "good" });
      const first = await bob.messages().next();
      expect(first.value).toEqual({ type: "reverse", data: { reversed: "desserts" } });
      const bad = await alice.send("reverse", "not an object");
      expect(bad.status).toBe("bad");
      expect(bad.error?.code).toBe("bad_request");
      await Promise.all([alice.close(), bob.close()]);
    } finally {
      await gw.stop();
    }
  });
});

afterAll(removeTempDirs);
