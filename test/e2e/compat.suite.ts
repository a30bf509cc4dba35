/**
 * The original Bester world run unchanged against bester: the first frames
 * original clients log in with, an original handler in its own folder, two
 * gateways from two original-shaped config files in one folder, and
 * `bester ctl` finding each of them from its file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { launchGateway, type RunningGateway, runCli, startGateway, tempDir } from "../_harness/gateway.ts";
import { BUN } from "../_harness/handlers.ts";
import { freePort } from "../_harness/redis.ts";
import { ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { expectClosed, login, openWire, type Wire } from "../_harness/wire.ts";

const ORIGINAL_HANDLER = join(ROOT, "test/fixtures/handlers/original.ts");

/** Frames of nothing but credentials and a payload as original clients write them. */
const loginWith = (username: string, payload?: unknown) => ({
  header: { scope: "client", authentication: { username, password: "pw" } },
  ...(payload === undefined ? {} : { payload }),
});

/**
 * An original server.conf in `dir`, named `name`.conf: its own UNIX socket
 * name, ports as strings, the original handler at handlers/type1 on aSock
 * (or none), and no key of bester's.
 */
function originalConfig(dir: string, name: string, handler: boolean): string {
  const conf = {
    network: {
      types: ["unix", "tcp4"],
      unix: { address: `${name}UNIXSock` },
      tcp4: { port: "0", address: "127.0.0.1" },
    },
    handlers: handler
      ? { availableTypes: ["type1"], typeMap: { type1: { handlerBinary: "./handlers/type1", unixDomainSocketPath: "aSock" } } }
      : { availableTypes: [], typeMap: {} },
    admin: { info: { name } },
  };
  const path = join(dir, `${name}.conf`);
  writeFileSync(path, JSON.stringify(conf, null, 2));
  return path;
}

/** handlers/type1 in `dir`: a program that starts the original-style handler, binding ../aSock. */
function originalHandler(dir: string): void {
  mkdirSync(join(dir, "handlers"));
  const program = join(dir, "handlers", "type1");
  writeFileSync(program, `#!/bin/sh\nexec "${BUN}" "${ORIGINAL_HANDLER}" ../aSock\n`);
  chmodSync(program, 0o755);
}

async function dummyWorks(wire: Wire, id: string): Promise<void> {
  wire.send({ header: {}, payload: { type: "dummy", id, data: null } });
  expect(await wire.next()).toEqual({ header: { status: "0" }, payload: { data: null, type: "dummy", id } });
}

export function compatSuite(runtime: RuntimeName) {
  describe(`${runtime}: original clients`, () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGateway(runtime);
    });
    afterAll(async () => {
      await gw?.stop();
    });

    // Whatever the first frame's payload, the header alone decides the login.
    const shapes: [string, unknown][] = [
      ["no payload", undefined],
      ["a null payload", null],
      ["a number", 42],
      ["a string", "hello"],
      ["an array", [1, 2]],
      ["the original client library's dummy without an id", { data: null, type: "dummy" }],
      ["an original test client's message without an id", { type: "type1", data: { to: ["x"], body: "b" } }],
      ['{"data": null, "type": "null"}', { data: null, type: "null" }],
      ["an id without a type", { id: "i", data: 1 }],
      ["fields of the wrong types", { type: 7, id: ["x"], data: {} }],
    ];
    for (const [label, payload] of shapes) {
      test(`logs in with ${label}; that payload is not answered; a normal message then works`, async () => {
        const wire = await openWire(gw.tcp4);
        wire.send(loginWith("orig", payload));
        expect(await wire.next()).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "auth_special" } });
        // The next thing to arrive answers the next message: nothing was made of the first payload.
        await dummyWorks(wire, "after-login");
        expect(wire.inbox).toEqual([]);
        wire.close();
      });
    }

    test("a well-formed first payload is dispatched like any later message", async () => {
      const wire = await openWire(gw.unix);
      wire.send(loginWith("whoami-first", { type: "builtin", id: "w1", data: { command: { type: "whoami" } } }));
      expect((await wire.next()).payload.id).toBe("auth_special");
      const answer = await wire.next();
      expect(answer.payload.id).toBe("w1");
      expect(answer.payload.data.username).toBe("whoami-first");
      wire.close();
    });

    test("a malformed later payload still ends the connection with malformed_message", async () => {
      const wire = await login(gw.tcp4, "later");
      wire.send({ payload: { type: "dummy", data: null } });
      const fatal = await wire.next();
      expect(fatal.header.messageType).toBe("fatal");
      expect(fatal.header.error).toEqual({ code: "malformed_message", message: "payload.id: expected a string, got nothing" });
      await expectClosed(wire);
    });

    test("the first payload set aside is logged at debug level, saying why", async () => {
      const wire = await openWire(gw.tcp4);
      wire.send(loginWith("logged", { type: "type1", data: null }));
      expect((await wire.next()).payload.id).toBe("auth_special");
      await gw.waitForLog((r) => r.level === "debug" && /not dispatched/.test(r.msg) && r.detail === "payload.id: expected a string, got nothing");
      wire.close();
    });
  });

  describe(`${runtime}: original configs side by side, and bester ctl`, () => {
    let dir: string;
    let a: RunningGateway, b: RunningGateway;
    let aConf: string, bConf: string;
    const ctl = (...args: string[]) => runCli(runtime, ["ctl", ...args]);

    beforeAll(async () => {
      // Two original-shaped files in one folder, with no control key: neither may take the other's sockets.
      dir = tempDir();
      originalHandler(dir);
      aConf = originalConfig(dir, "a", true);
      bConf = originalConfig(dir, "b", false);
      [a, b] = await Promise.all([
        launchGateway(runtime, aConf, dir, { keepDir: true }),
        launchGateway(runtime, bConf, dir, { keepDir: true }),
      ]);
    }, 60000);
    afterAll(async () => {
      await Promise.allSettled([a?.stop(), b?.stop()]);
    });

    test("both are ready, each answering bester ctl status from its own file on its own socket, mode 0600", async () => {
      for (const [gw, conf, name] of [[a, aConf, "a"], [b, bConf, "b"]] as const) {
        const address: string = gw.control!;
        expect(address).toMatch(new RegExp(`^unix:${dir}/${name}-[0-9a-f]{8}\\.control$`));
        expect(statSync(address.slice(5)).mode & 0o777).toBe(0o600);
        const r = await ctl("status", "--config", conf);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        expect(r.stdout).toMatch(/^ready +yes$/m);
        expect(r.stdout).toMatch(new RegExp(`^listeners +unix:${dir}/${name}UNIXSock, tcp4 127\\.0\\.0\\.1:\\d+$`, "m"));
        const json = JSON.parse((await ctl("status", "--config", conf, "--json")).stdout);
        expect(json.ready).toBe(true);
        expect(json.listeners.map((l: any) => l.kind).sort()).toEqual(["tcp4", "unix"]);
      }
    });

    test("the original handler runs in its own folder and answers on ../aSock", async () => {
      const alice = await login(a.unix, "alice");
      alice.send({ payload: { type: "type1", id: "t1", data: { to: ["alice"], body: "from 2020" } } });
      expect(await alice.next()).toEqual({
        header: { messageType: "receivedMessage" },
        payload: { type: "type1", data: { body: "from 2020", cwd: join(dir, "handlers") } },
      });
      expect((await alice.next()).header.status).toBe("good");
      expect(statSync(join(dir, "aSock")).isSocket()).toBe(true);
      alice.close();
    });

    test("ctl clients and handlers show what runs; disconnect closes a user's sessions", async () => {
      const carol = await login(a.tcp4, "carol");
      const clients = await ctl("clients", "--config", aConf);
      expect(clients.code).toBe(0);
      expect(clients.stdout).toMatch(/^USER +CONN +LISTENER/);
      expect(clients.stdout).toMatch(/^carol +\d+ +tcp4 +127\.0\.0\.1:\d+ /m);
      const listed = JSON.parse((await ctl("clients", "--config", aConf, "--json")).stdout);
      expect(listed.clients.map((c: any) => c.username)).toContain("carol");
      const handlers = await ctl("handlers", "--config", aConf);
      expect(handlers.stdout).toMatch(/^type1 +per-message +yes +up +\d+ +0 +0 +-$/m);
      expect((await ctl("handlers", "--config", bConf)).stdout).toBe("no handlers configured\n");

      const gone = await ctl("disconnect", "carol", "--config", aConf);
      expect(gone).toMatchObject({ code: 0, stdout: "disconnected 1 session of carol\n" });
      expect((await carol.next()).header.error.code).toBe("disconnected");
      await expectClosed(carol);
      const again = await ctl("disconnect", "carol", "--config", aConf);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('no client named "carol" is connected (not_connected)');
    });

    test("ctl reload keeps a connected client; a broken file is refused, exit 1, nothing changes", async () => {
      const dave = await login(b.unix, "dave");
      const same = await ctl("reload", "--config", bConf);
      expect(same).toMatchObject({ code: 0, stdout: "reloaded: nothing changed\n" });
      const original = JSON.parse(readFileSync(bConf, "utf8"));
      writeFileSync(bConf, JSON.stringify({ ...original, admin: { info: { name: "b2" } } }));
      const changed = await ctl("reload", "--config", bConf);
      expect(changed).toMatchObject({ code: 0, stdout: "reloaded: 1 change\n  admin.info changed\n" });
      await dummyWorks(dave, "still-here");

      writeFileSync(bConf, JSON.stringify({ ...original, limits: { maxFrameBytes: "big" } }));
      // ctl reads the file to find the gateway, so a broken file stops ctl itself: name the socket instead.
      const refused = await ctl("reload", "--control", b.control!);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("reload refused; the gateway runs unchanged:");
      expect(refused.stderr).toContain('limits.maxFrameBytes: expected an integer >= 64, got "big"');
      writeFileSync(bConf, JSON.stringify(original));
      await dummyWorks(dave, "still-here-2");
      dave.close();
    });

    test("ctl says when nothing answers (exit 3) and when it was called wrongly (exit 2)", async () => {
      const none = await ctl("status", "--control", `unix:${join(dir, "nobody.control")}`);
      expect(none.code).toBe(3);
      expect(none.stderr).toContain(`bester ctl: no gateway answers at unix:${join(dir, "nobody.control")}`);
      expect((await ctl("status", "--control", "http://127.0.0.1:1")).code).toBe(3);
      for (const args of [["frobnicate"], [], ["disconnect"], ["status", "--control", "ftp://x"], ["status", "--wait"]]) {
        const r = await ctl(...args);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("Run 'bester ctl --help' for usage.");
      }
    });

    test("ctl shutdown --wait returns once the gateway is gone; its sockets are removed", async () => {
      const r = await ctl("shutdown", "--wait", "--config", bConf);
      expect(r).toMatchObject({ code: 0, stdout: "shutting down\nstopped\n" });
      expect(await b.exited).toBe(0);
      expect(() => statSync(b.control!.slice(5))).toThrow();
      expect((await ctl("status", "--config", bConf)).code).toBe(3);
    });
  });

  describe(`${runtime}: bester ctl on a TCP control API`, () => {
    test("found from the config file (address, port and token in it), or named with --control and BESTER_CONTROL_TOKEN", async () => {
      const token = "ctl-test-token-8841";
      const port = await freePort();
      const gw = await startGateway(runtime, { control: { enabled: true, address: "127.0.0.1", port, token } });
      const env = { ...process.env };
      delete env.BESTER_CONTROL_TOKEN;
      try {
        const viaFile = await runCli(runtime, ["ctl", "status", "--config", gw.configPath], { env });
        expect(viaFile.code).toBe(0);
        expect(viaFile.stdout).toMatch(new RegExp(`^gateway +bester \\S+ \\((bun|deno) \\S+\\) at 127\\.0\\.0\\.1:${port}, up `));
        const withEnv = await runCli(runtime, ["ctl", "handlers", "--control", `http://127.0.0.1:${port}`], { env: { ...env, BESTER_CONTROL_TOKEN: token } });
        expect(withEnv).toMatchObject({ code: 0, stdout: "no handlers configured\n" });
        const bare = await runCli(runtime, ["ctl", "clients", "--control", `127.0.0.1:${port}`], { env: { ...env, BESTER_CONTROL_TOKEN: token } });
        expect(bare).toMatchObject({ code: 0, stdout: "no clients connected\n" });
        const without = await runCli(runtime, ["ctl", "clients", "--control", `http://127.0.0.1:${port}`], { env });
        expect(without.code).toBe(1);
        expect(without.stderr).toContain("the gateway wants a token");
      } finally {
        await gw.stop();
      }
    });
  });
}
