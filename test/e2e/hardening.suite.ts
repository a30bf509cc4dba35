/**
 * What a hostile user tries, against a real gateway: a flood of wrong
 * passwords (memory, holds per address and per username, other addresses
 * unaffected), socket files under `umask 000`, a listener name that only
 * looks local, and JSON nested 100,000 deep from a handler, a client and
 * an informer connection.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { runCli, type RunningGateway, startGateway, tempDir } from "../_harness/gateway.ts";
import { scripted } from "../_harness/handlers.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { authFrame, expectClosed, frameText, login, openWire, type Target, type Wire } from "../_harness/wire.ts";

/** The peak RSS a flood of 200 logins may cost the gateway (docs/PERFORMANCE.md "Login floods"). */
const FLOOD_PEAK_RSS_MIB = 256;
const FLOOD = 200;

const modeOf = (path: string) => statSync(path).mode & 0o777;
const octal = (mode: number) => `0${mode.toString(8)}`;

/** The gateway's highest resident memory so far, from the kernel (the gateway is the child process itself). */
function peakRssMiB(gw: RunningGateway): number {
  const status = readFileSync(`/proc/${gw.child.pid}/status`, "utf8");
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024;
}

async function addUser(runtime: RuntimeName, gw: RunningGateway, user: string, password: string): Promise<void> {
  const out = await runCli(runtime, ["passwd", "add", user, "--config", gw.configPath], { input: `${password}\n` });
  expect(out.code).toBe(0);
}

/** One login; the auth_special report, and the connection (closed by the gateway unless good). */
async function attempt(target: Target, user: string, password: string): Promise<{ wire: Wire; reply: any }> {
  const wire = await openWire(target);
  wire.send(authFrame(user, password));
  // A flood's checks take their turns: on a loaded machine the last answer may be many seconds away.
  return { wire, reply: await wire.next(60_000) };
}

/** The error code of a login's report ("good" when it got in); the connection is closed. */
async function outcome(target: Target, user: string, password: string): Promise<string> {
  const { wire, reply } = await attempt(target, user, password);
  wire.close();
  return reply.header.status === "good" ? "good" : reply.header.error.code;
}

function tally(codes: string[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const c of codes) t[c] = (t[c] ?? 0) + 1;
  return t;
}

async function metricsText(gw: RunningGateway): Promise<string> {
  return (await fetch(`${gw.control}/metrics`)).text();
}

export function hardeningSuite(runtime: RuntimeName) {
  describe(`${runtime}: hardening`, () => {
    describe("login floods", () => {
      const sqlite = (dir: string) => ({ type: "sqlite", sqlite: { path: join(dir, "accounts.db") } });

      test(`${FLOOD} wrong passwords at once: a few are checked, the address is held back, another address and the UNIX socket get in`, async () => {
        const dir = tempDir();
        const gw = await startGateway(runtime, {
          database: sqlite(dir),
          control: { enabled: true, address: "127.0.0.1", port: 0 },
          // Long holds, so the test never races one running out.
          limits: { loginFailures: { penaltyMs: 60_000, maxPenaltyMs: 60_000 } },
        });
        try {
          await addUser(runtime, gw, "alice", "right password");
          const tcp = gw.tcp4 as { host: string; port: number };
          const flood = Array.from({ length: FLOOD }, (_, i) => outcome(tcp, "alice", `wrong-${i}`));
          const elsewhere = outcome({ ...tcp, localAddress: "127.0.0.2" }, "alice", "right password");
          const overUnix = outcome(gw.unix, "alice", "right password");
          const codes = tally(await Promise.all(flood));
          expect(await elsewhere).toBe("good");
          expect(await overUnix).toBe("good");
          // Five failures begin the hold; checks already running when it began finish as failures.
          expect(Object.keys(codes).sort()).toEqual(["auth_failed", "login_throttled"]);
          expect(codes.auth_failed).toBeGreaterThanOrEqual(5);
          expect(codes.auth_failed).toBeLessThanOrEqual(5 + availableParallelism());

          // Held back: even the right password from that address is refused unchecked, and says why.
          const held = await attempt(tcp, "alice", "right password");
          expect(held.reply).toMatchObject({ header: { status: "bad", error: { code: "login_throttled" } }, payload: { id: "auth_special" } });
          expect(held.reply.header.error.message).toMatch(/^too many failed logins from this address; try again in \d+ s$/);
          await expectClosed(held.wire);

          const hold = await gw.waitForLog((r) => r.msg === "logins from an address held back after repeated failures");
          expect(hold).toMatchObject({ level: "warn", source: "127.0.0.1" });
          const metrics = await metricsText(gw);
          expect(metrics).toContain(`bester_logins_held_back_total{by="source"} ${codes.login_throttled! + 1}`);
          expect(metrics).toContain('bester_login_holds_total{by="source"} 1');
          expect(metrics).toContain('bester_logins_held{by="source"} 1');
          expect(metrics).toContain('bester_password_checks{state="waiting"} 0');
          expect(peakRssMiB(gw)).toBeLessThan(FLOOD_PEAK_RSS_MIB);
        } finally {
          await gw.stop();
        }
      }, 60_000);

      test(`with holding back off, all ${FLOOD} are checked in turn: memory stays under ${FLOOD_PEAK_RSS_MIB} MiB and another address still gets in`, async () => {
        const dir = tempDir();
        // Every check of the flood waits its turn: the login timeout must not end the waiting ones first.
        const gw = await startGateway(runtime, { database: sqlite(dir), limits: { loginFailures: { enabled: false }, authTimeoutMs: 120_000 } });
        try {
          await addUser(runtime, gw, "alice", "right password");
          const tcp = gw.tcp4 as { host: string; port: number };
          const flood = Array.from({ length: FLOOD }, (_, i) => outcome(tcp, "alice", `wrong-${i}`));
          const elsewhere = outcome({ ...tcp, localAddress: "127.0.0.2" }, "alice", "right password");
          expect(tally(await Promise.all(flood))).toEqual({ auth_failed: FLOOD });
          expect(await elsewhere).toBe("good");
          expect(peakRssMiB(gw)).toBeLessThan(FLOOD_PEAK_RSS_MIB);
        } finally {
          await gw.stop();
        }
      }, 180_000);

      test("UNIX-socket clients share one bucket; a username is held back by failures from several addresses, never from one", async () => {
        const dir = tempDir();
        const gw = await startGateway(runtime, {
          database: sqlite(dir),
          limits: { loginFailures: { perSource: 3, perUsername: 3, penaltyMs: 60_000, maxPenaltyMs: 60_000 } },
        });
        try {
          await addUser(runtime, gw, "alice", "right password");
          await addUser(runtime, gw, "bob", "bobs password");
          const tcp = gw.tcp4 as { host: string; port: number };
          const from = (n: number) => ({ ...tcp, localAddress: `127.0.0.${n}` });

          for (let i = 0; i < 3; i++) expect(await outcome(gw.unix, "carol", "guess")).toBe("auth_failed");
          expect(await outcome(gw.unix, "alice", "right password")).toBe("login_throttled");
          expect(await outcome(from(2), "alice", "right password")).toBe("good");

          // One address hammering bob: that address is held back, bob is not.
          for (let i = 0; i < 3; i++) expect(await outcome(from(3), "bob", "guess")).toBe("auth_failed");
          expect(await outcome(from(3), "bob", "bobs password")).toBe("login_throttled");
          expect(await outcome(from(4), "bob", "bobs password")).toBe("good");
          // Two more addresses failing on bob make three: now bob is held back from everywhere.
          expect(await outcome(from(5), "bob", "guess")).toBe("auth_failed");
          expect(await outcome(from(6), "bob", "guess")).toBe("auth_failed");
          const held = await attempt(from(7), "bob", "bobs password");
          expect(held.reply.header.error.code).toBe("login_throttled");
          expect(held.reply.header.error.message).toMatch(/^too many failed logins for this username; try again in \d+ s$/);
          held.wire.close();
          expect(await outcome(from(7), "alice", "right password")).toBe("good");
          await gw.waitForLog((r) => r.msg === "logins of a username held back after repeated failures" && r.user === "bob");
        } finally {
          await gw.stop();
        }
      }, 60_000);
    });

    describe("socket files under umask 000", () => {
      let gw: RunningGateway;
      beforeAll(async () => {
        gw = await startGateway(
          runtime,
          {
            informer: { enabled: true, path: "informer.sock" },
            handlers: {
              availableTypes: ["echo"],
              typeMap: { echo: { bundled: "echo", unixDomainSocketPath: "handler-echo.sock", mode: "persistent", envelope: true } },
            },
          },
          { umask: "000" },
        );
      }, 60_000);
      afterAll(async () => {
        await gw?.stop();
      });

      test("the handler's socket (SDK) and the informer's are 0600, the client socket network.unix.mode (default 0660)", async () => {
        expect(octal(modeOf(join(gw.dir, "handler-echo.sock")))).toBe("0600");
        expect(octal(modeOf(join(gw.dir, "informer.sock")))).toBe("0600");
        expect(octal(modeOf((gw.unix as { path: string }).path))).toBe("0660");
        // The bundled handler answers through its socket.
        const alice = await login(gw.unix, "alice");
        alice.send({ payload: { type: "echo", id: "e1", data: "hi" } });
        expect((await alice.next()).payload).toMatchObject({ type: "echo" });
        alice.close();
      });

      test("a reload that sets network.unix.mode opens the client socket again with it", async () => {
        const config = JSON.parse(readFileSync(gw.configPath, "utf8"));
        config.network.unix.mode = "0600";
        writeFileSync(gw.configPath, JSON.stringify(config));
        gw.child.kill("SIGHUP");
        await gw.waitForLog((r) => r.msg === "reloaded" && /listener unix moved/.test(r.change));
        expect(octal(modeOf((gw.unix as { path: string }).path))).toBe("0600");
        (await login(gw.unix, "bob")).close();
      });
    });

    describe("names that only look local", () => {
      const conf = (address: string, extra: object = {}) => {
        const dir = tempDir();
        const path = join(dir, "server.conf");
        writeFileSync(path, JSON.stringify({ network: { types: ["tcp4"], tcp4: { address, port: 0 } }, control: { enabled: false }, ...extra }));
        return path;
      };

      test("bester check and serve refuse the open store on a host name that does not resolve to loopback", async () => {
        const path = conf("127.attacker.example");
        const expected =
          '  database.type: "open" lets anyone in with any password, refused while network.tcp4 listens on a name that may not be loopback: 127.attacker.example does not resolve (ENOTFOUND), so it cannot be shown to be loopback; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true';
        for (const command of ["check", "serve"]) {
          const out = await runCli(runtime, [command, "--config", path]);
          expect(out.code).toBe(1);
          expect(out.stderr).toContain(`bester: ${path}: 1 problem in the config\n${expected}\n`);
        }
        const local = await runCli(runtime, ["check", "--config", conf("localhost")]);
        expect(local.code).toBe(0);
        expect(JSON.parse(local.stdout).network.tcp4.address).toBe("localhost");
      });
    });

    describe("JSON nested 100,000 deep", () => {
      const DEEP = 100_000;
      let gw: RunningGateway;
      beforeAll(async () => {
        gw = await startGateway(runtime, {
          informer: { enabled: true, path: "informer.sock" },
          handlers: {
            availableTypes: ["script", "piped"],
            typeMap: {
              script: scripted("script.sock"),
              piped: scripted("piped.sock", { mode: "persistent" }),
            },
          },
        });
      }, 60_000);
      afterAll(async () => {
        await gw?.stop();
      });
      const msg = (type: string, id: string, data: unknown) => ({ payload: { type, id, data } });
      const tooDeep = "nests arrays and objects deeper than 128 levels";

      test("a handler's answer: the sender gets bad too_deep, a bystander is served meanwhile", async () => {
        const alice = await login(gw.tcp4, "alice");
        const bystander = await login(gw.tcp4, "bystander");
        alice.send(msg("script", "d1", { do: "deep", depth: DEEP }));
        bystander.send(msg("script", "b1", { do: "deliver", to: ["bystander"], body: "fine" }));
        expect((await bystander.next()).payload.data).toBe("fine");
        expect((await bystander.next()).header.status).toBe("good");
        const report = await alice.next();
        expect(report).toMatchObject({ header: { status: "bad", messageType: "statusReport", error: { code: "too_deep" } }, payload: { id: "d1" } });
        expect(report.header.error.message).toBe(`handler "script": unreadable answer: frame 1 ${tooDeep}`);
        alice.send(msg("dummy", "after", null));
        expect((await alice.next()).payload.id).toBe("after");
        alice.close();
        bystander.close();
      });

      test("on a kept handler connection only that request fails; the one behind it is answered", async () => {
        const alice = await login(gw.tcp4, "alice2");
        alice.send(msg("piped", "p1", { do: "deep", depth: DEEP }));
        alice.send(msg("piped", "p2", { do: "deliver", to: ["alice2"], body: "next" }));
        expect(await alice.next()).toMatchObject({ header: { status: "bad", error: { code: "too_deep" } }, payload: { id: "p1" } });
        expect((await alice.next()).payload.data).toBe("next");
        expect(await alice.next()).toMatchObject({ header: { status: "good" }, payload: { id: "p2" } });
        alice.close();
      });

      test("a client's frame: a fatal too_deep for that client only", async () => {
        const other = await login(gw.tcp4, "other");
        const mallory = await login(gw.tcp4, "mallory");
        mallory.sendRaw(frameText(`{"payload":{"type":"script","id":"m1","data":${"[".repeat(DEEP)}${"]".repeat(DEEP)}}}`));
        expect(await mallory.next()).toMatchObject({ header: { status: "bad", messageType: "fatal", error: { code: "too_deep" } } });
        await expectClosed(mallory);
        other.send(msg("dummy", "still", null));
        expect((await other.next()).payload.id).toBe("still");
        other.close();
      });

      test("an informer request: status 1 with too_deep, and the connection goes on", async () => {
        const informer = await openWire({ path: join(gw.dir, "informer.sock") });
        informer.sendRaw(frameText(`{"command":{"type":"isClient","data":${"[".repeat(DEEP)}${"]".repeat(DEEP)}}}`));
        expect(await informer.next()).toMatchObject({ status: "1", data: null, error: { code: "too_deep" } });
        informer.sendRaw(frameText('{"command":{"type":"listClients"}}'));
        expect(await informer.next()).toMatchObject({ status: "0" });
        informer.close();
      });
    });
  });
}
