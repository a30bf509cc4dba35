/**
 * The end-to-end suites against the compiled binary (dist/bester-<os>-<arch>),
 * the same scenarios bun.test.ts and deno.test.ts run; then what only the
 * binary has to do: work alone, copied into an empty folder.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CHECKSUM_FILE } from "../../build/targets.ts";
import { ensureFreshBinary } from "../_harness/binary.ts";
import { chat, differences, onFreePorts, printedDefault, serve } from "../_harness/embedded.ts";
import { removeTempDirs, tempDir } from "../_harness/gateway.ts";
import { BINARY, ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { accountsSuite } from "./accounts.suite.ts";
import { benchSuite } from "./bench.suite.ts";
import { cliSuite } from "./cli.suite.ts";
import { clusterSuite } from "./cluster.suite.ts";
import { compatSuite } from "./compat.suite.ts";
import { controlSuite } from "./control.suite.ts";
import { deliverySuite } from "./delivery.suite.ts";
import { federationSuite } from "./federation.suite.ts";
import { handlerSuite } from "./handlers.suite.ts";
import { hardeningSuite } from "./hardening.suite.ts";
import { informerSuite } from "./informer.suite.ts";
import { listenerSuite } from "./listeners.suite.ts";
import { loginSuite } from "./login.suite.ts";
import { sdkSuite } from "./sdk.suite.ts";
import { statusPageSuite } from "./status-page.suite.ts";
import { webChatSuite } from "./web-chat.suite.ts";
import { webSocketSuite } from "./websocket.suite.ts";

ensureFreshBinary();

const SUITES = {
  listenerSuite,
  cliSuite,
  compatSuite,
  handlerSuite,
  loginSuite,
  accountsSuite,
  sdkSuite,
  controlSuite,
  deliverySuite,
  // The main flow: the binary runs the same cluster code; the failure cases are the runtime's, covered on Bun.
  clusterSuite: (runtime: RuntimeName) => clusterSuite(runtime, { all: false }),
  statusPageSuite,
  webSocketSuite,
  webChatSuite,
  federationSuite,
  informerSuite,
  benchSuite,
  hardeningSuite,
};
for (const suite of Object.values(SUITES)) suite("binary");
afterAll(removeTempDirs);

describe("binary", () => {
  test("registers every suite bun.test.ts registers", () => {
    // A suite added for Bun and Deno but forgotten here would silently not cover the binary.
    const forBun = [...readFileSync(join(ROOT, "test/e2e/bun.test.ts"), "utf8").matchAll(/^(\w+)\("bun"\)/gm)].map((m) => m[1]);
    expect(Object.keys(SUITES).sort()).toEqual(forBun.sort());
  });

  test(`${CHECKSUM_FILE} holds the binary's SHA-256, in the format sha256sum -c reads`, () => {
    const name = BINARY.slice(BINARY.lastIndexOf("/") + 1);
    const line = readFileSync(join(ROOT, "dist", CHECKSUM_FILE), "utf8").split("\n").find((l) => l.endsWith(`  ${name}`));
    expect(line).toMatch(/^[0-9a-f]{64}  /);
    const digest = new Bun.CryptoHasher("sha256").update(readFileSync(BINARY)).digest("hex");
    expect(line!.slice(0, 64)).toBe(digest);
    // The line as a user checks it (GNU coreutils; skipped where sha256sum is missing).
    const check = spawnSync("sha256sum", ["--check", "-"], { cwd: join(ROOT, "dist"), input: `${line}\n`, encoding: "utf8" });
    if (check.error === undefined) expect(check.stdout).toBe(`${name}: OK\n`);
  });

  test("alone in an empty folder: starts the embedded default with its bundled handlers and carries a chat", async () => {
    const dir = tempDir("bester-alone-");
    const exe = join(dir, "bester");
    copyFileSync(BINARY, exe);
    // Nothing from the repo: no bun or deno on PATH, a home and a run dir of its own.
    const runtimeDir = join(dir, "xdg");
    mkdirSync(runtimeDir, { mode: 0o700 });
    const opts = { cwd: dir, env: { PATH: "/usr/bin:/bin", HOME: dir, XDG_RUNTIME_DIR: runtimeDir } };

    // The embedded default as the binary itself prints it (no config file),
    // and the same on free ports: the only difference is the bound ports.
    const embedded = printedDefault([exe], opts);
    expect(embedded.source).toBeUndefined(); // check prints only keys a config file has
    for (const name of ["echo", "chat", "shout"]) {
      expect(embedded.handlers.typeMap[name]).toMatchObject({ bundled: name, unixDomainSocketPath: join(runtimeDir, "bester", `handler-${name}.sock`) });
    }
    const freePorts = onFreePorts(embedded);
    const confPath = join(dir, "bester.conf");
    writeFileSync(confPath, JSON.stringify(freePorts, null, 2));
    // Read back through the binary: the effective config differs from the embedded default only in ports.
    const effective = JSON.parse(spawnSync(exe, ["check", confPath], { ...opts, encoding: "utf8" }).stdout);
    const changed = differences(embedded, effective).filter((p) => p !== "source");
    expect(changed.length).toBeGreaterThanOrEqual(2);
    for (const path of changed) expect(path).toMatch(/\.port$/);
    expect(changed).toContain("network.tcp4.port");
    expect(changed).toContain("network.tcp6.port");

    const gw = await serve([exe], ["--config", confPath], opts);
    try {
      expect(gw.log()).not.toContain(" WARN ");
      // The bundled handlers are this very file, run as `bester handler NAME`.
      for (const name of ["echo", "chat", "shout"]) {
        const started = gw.log().split("\n").find((l) => l.includes(` handler started handler=${name} `));
        expect(started).toContain(` argv="${exe} handler ${name} `);
      }
      expect(Object.keys(gw.addresses)).toEqual(expect.arrayContaining(["tcp4", "tcp6", "unix"]));
      expect(await chat([exe], gw.addresses.unix!, gw.addresses.tcp4!, opts)).toEqual({ alice: 0, bob: 0 });
      expect(await chat([exe], gw.addresses.tcp6!, gw.addresses.unix!, opts)).toEqual({ alice: 0, bob: 0 });
    } finally {
      gw.child.kill("SIGTERM");
    }
    expect(await gw.exited).toBe(0);
    // It cleaned up after itself and wrote nothing beside the binary; what it keeps (the delivery store) is in the home's state folder.
    expect(readdirSync(join(runtimeDir, "bester")).filter((f) => f.endsWith(".sock"))).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual([".local", "bester", "bester.conf", "xdg"]);
    expect(existsSync(join(dir, ".local", "state", "bester", "delivery.db"))).toBe(true);
    expect(existsSync(exe)).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });
});
