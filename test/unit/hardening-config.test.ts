/** The config of the hardening settings: socket mode, JSON depth, login throttling, loopback judged by resolution. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planReload } from "../../src/config/diff.ts";
import { formatIssue, type LoadResult, loadConfigFile, validateConfig } from "../../src/config/load.ts";
import { redactConfig } from "../../src/config/redact.ts";
import { isLoopbackIp } from "../../src/config/loopback.ts";
import type { Config } from "../../src/config/types.ts";

const SOURCE = "/etc/bester/server.conf";
const load = (file: unknown) => validateConfig(file, SOURCE);
function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatIssue).join("\n")}`);
  return r.config;
}
function errorLines(r: LoadResult): string[] {
  if (r.ok) throw new Error("expected the config to be refused");
  return r.errors.map(formatIssue);
}
const unixOnly = (unix: object) => ({ network: { types: ["unix"], unix: { address: "gw.sock", ...unix } } });
const tcp4Only = (extra: Record<string, unknown> = {}) => ({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0 } }, ...extra });

describe("network.unix.mode", () => {
  test("octal text or the mode's value; default 0660; printed back as octal text", () => {
    expect(ok(load(unixOnly({}))).network.unix).toEqual({ address: "/etc/bester/gw.sock", mode: 0o660 });
    for (const [written, mode] of [["0600", 0o600], ["600", 0o600], ["0o640", 0o640], ["0777", 0o777], [0o600, 0o600]] as const) {
      expect(ok(load(unixOnly({ mode: written }))).network.unix!.mode).toBe(mode);
    }
    const printed = redactConfig(ok(load(unixOnly({ mode: "0600" })))) as { network: { unix: unknown } };
    expect(printed.network.unix).toEqual({ address: "/etc/bester/gw.sock", mode: "0600" });
  });

  test("a mode the owner cannot read and write, or a decimal number meant as octal, is refused", () => {
    const expected = 'expected an octal mode such as "0660" that lets the owner read and write';
    expect(errorLines(load(unixOnly({ mode: "0460" })))).toEqual([`network.unix.mode: ${expected}, got "0460"`]);
    expect(errorLines(load(unixOnly({ mode: 660 })))).toEqual([`network.unix.mode: ${expected}, got 660`]);
    expect(errorLines(load(unixOnly({ mode: "rw-rw----" })))).toEqual([`network.unix.mode: ${expected}, got "rw-rw----"`]);
    expect(errorLines(load(unixOnly({ mode: "01660" })))).toEqual([`network.unix.mode: ${expected}, got "01660"`]);
  });

  test("a reload that changes the mode opens the listener again", () => {
    const before = ok(load(unixOnly({})));
    const plan = planReload(before, ok(load(unixOnly({ mode: "0600" }))));
    expect(plan.ok && plan.plan.changes).toEqual(["listener unix moved (/etc/bester/gw.sock -> /etc/bester/gw.sock mode 0600)"]);
  });
});

describe("limits.maxJsonDepth and limits.loginFailures", () => {
  test("defaults, bounds", () => {
    const c = ok(load(tcp4Only()));
    expect(c.limits.maxJsonDepth).toBe(128);
    expect(c.limits.loginFailures).toEqual({ enabled: true, perSource: 5, perUsername: 10, penaltyMs: 1000, maxPenaltyMs: 300_000, forgetMs: 600_000 });
    expect(ok(load(tcp4Only({ limits: { maxJsonDepth: 4 } }))).limits.maxJsonDepth).toBe(4);
    expect(errorLines(load(tcp4Only({ limits: { maxJsonDepth: 3 } })))).toEqual(["limits.maxJsonDepth: expected an integer 4-4096, got 3"]);
    expect(errorLines(load(tcp4Only({ limits: { maxJsonDepth: 100_000 } })))).toEqual(["limits.maxJsonDepth: expected an integer 4-4096, got 100000"]);
  });

  test("login failures: a partial block keeps the other defaults; a first hold longer than the longest is refused", () => {
    const c = ok(load(tcp4Only({ limits: { loginFailures: { perSource: 0, penaltyMs: 50 } } })));
    expect(c.limits.loginFailures).toMatchObject({ enabled: true, perSource: 0, perUsername: 10, penaltyMs: 50 });
    expect(errorLines(load(tcp4Only({ limits: { loginFailures: { penaltyMs: 2000, maxPenaltyMs: 1000 } } })))).toEqual([
      "limits.loginFailures.penaltyMs: expected at most limits.loginFailures.maxPenaltyMs (1000), got 2000",
    ]);
    expect(errorLines(load(tcp4Only({ limits: { loginFailures: { enabled: "yes", perUsername: -1 } } })))).toEqual([
      'limits.loginFailures.enabled: expected true or false, got "yes"',
      "limits.loginFailures.perUsername: expected an integer >= 0, got -1",
    ]);
  });

  test("a reload names a changed login rule as JSON", () => {
    const before = ok(load(tcp4Only()));
    const plan = planReload(before, ok(load(tcp4Only({ limits: { loginFailures: { perSource: 3 } } }))));
    expect(plan.ok && plan.plan.changes).toEqual([
      'limits.loginFailures: {"enabled":true,"forgetMs":600000,"maxPenaltyMs":300000,"penaltyMs":1000,"perSource":5,"perUsername":10} -> {"enabled":true,"forgetMs":600000,"maxPenaltyMs":300000,"penaltyMs":1000,"perSource":3,"perUsername":10}',
    ]);
  });
});

describe("loopback, judged by address", () => {
  test("isLoopbackIp: 127.0.0.0/8 and ::1 in any spelling of an address; never a host name", () => {
    for (const a of ["127.0.0.1", "127.255.1.2", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::FFFF:7F01:0203"]) {
      expect([a, isLoopbackIp(a)]).toEqual([a, true]);
    }
    for (const a of ["10.0.0.1", "0.0.0.0", "::", "::ffff:10.0.0.1", "::2", "localhost", "127.attacker.example", "127.1", "128.0.0.1"]) {
      expect([a, isLoopbackIp(a)]).toEqual([a, false]);
    }
  });

  const dir = mkdtempSync(join(tmpdir(), "bester-loopback-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const loadFile = (file: object) => {
    const path = join(dir, `c${n++}.conf`);
    writeFileSync(path, JSON.stringify(file));
    return loadConfigFile(path);
  };
  const open = (address: string, extra: object = {}) => ({ network: { types: ["tcp4"], tcp4: { address, port: 0 } }, ...extra });

  test("the open store: a name that does not resolve, or resolves off loopback, is refused; a loopback name is not", async () => {
    expect(errorLines(await loadFile(open("127.attacker.example")))).toEqual([
      'database.type: "open" lets anyone in with any password, refused while network.tcp4 listens on a name that may not be loopback: 127.attacker.example does not resolve (ENOTFOUND), so it cannot be shown to be loopback; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true',
    ]);
    // Numeric spellings the resolver reads as addresses: 10.1 is 10.0.0.1, 127.1 is 127.0.0.1.
    expect(errorLines(await loadFile(open("10.1")))).toEqual([
      'database.type: "open" lets anyone in with any password, refused while network.tcp4 listens on a name that may not be loopback: 10.1 resolves to 10.0.0.1, not loopback only; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true',
    ]);
    ok(await loadFile(open("127.1")));
    ok(await loadFile(open("localhost")));
    ok(await loadFile(open("127.attacker.example", { database: { allowOpenOnNetwork: true } })));
    ok(await loadFile(open("127.attacker.example", { database: { type: "sqlite" } })));
  });

  test("the open store and a WebSocket listener on a name: judged by what it resolves to as well", async () => {
    const ws = (address: string) => ({ network: { types: ["ws"], ws: { address, port: 0 } } });
    expect(errorLines(await loadFile(ws("127.attacker.example")))).toEqual([
      'database.type: "open" lets anyone in with any password, refused while network.ws listens on a name that may not be loopback: 127.attacker.example does not resolve (ENOTFOUND), so it cannot be shown to be loopback; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true',
    ]);
    ok(await loadFile(ws("localhost")));
  });

  test("a control API without a token on a name that is not loopback is refused", async () => {
    const file = (control: object) => open("127.0.0.1", { control });
    expect(errorLines(await loadFile(file({ address: "127.attacker.example" })))).toEqual([
      "control.token: required because control.address may not be loopback: 127.attacker.example does not resolve (ENOTFOUND), so it cannot be shown to be loopback; set it, or the BESTER_CONTROL_TOKEN environment variable",
    ]);
    ok(await loadFile(file({ address: "127.attacker.example", token: "a-token" })));
    ok(await loadFile(file({ address: "localhost" })));
  });
});
