/** The command line as a user meets it: help, version, check, usage errors. */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startGateway, tempDir } from "../_harness/gateway.ts";
import { scripted } from "../_harness/handlers.ts";
import { ENGINE, ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { login } from "../_harness/wire.ts";

const FIXTURES = join(ROOT, "test/fixtures");

/** A live process's environment, as the kernel holds it. */
function environOf(pid: number): Record<string, string | undefined> {
  const pairs = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0").filter((e) => e.includes("="));
  return Object.fromEntries(pairs.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
}

export function cliSuite(runtime: RuntimeName) {
  describe(`${runtime}: cli`, () => {
    test("version prints the package version and the runtime", async () => {
      const { code, stdout } = await runCli(runtime, ["version"]);
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^bester \\d+\\.\\d+\\.\\d+ \\(${ENGINE[runtime]} `));
    });

    test("--help for the program and each command", async () => {
      for (const args of [["--help"], ["serve", "--help"], ["check", "--help"], ["help", "check"]]) {
        const { code, stdout } = await runCli(runtime, args);
        expect(code).toBe(0);
        expect(stdout).toContain("Usage");
      }
    });

    test("an unknown command or flag is a usage error, exit 2", async () => {
      const a = await runCli(runtime, ["serv"]);
      expect(a.code).toBe(2);
      expect(a.stderr).toContain("unknown command 'serv'");
      const b = await runCli(runtime, ["serve", "--colour"]);
      expect(b.code).toBe(2);
      expect(b.stderr).toContain("--colour");
      expect(b.stderr).toContain("bester serve --help");
    });

    test("check accepts the original server.conf unchanged", async () => {
      const { code, stdout } = await runCli(runtime, ["check", "--config", join(FIXTURES, "server.conf")]);
      expect(code).toBe(0);
      const effective = JSON.parse(stdout);
      expect(effective.network.types).toEqual(["unix", "tcp4", "tcp6"]);
      expect(effective.network.tcp4).toEqual({ address: "0.0.0.0", port: 2220 });
      expect(effective.network.tcp6).toEqual({ address: "::", port: 2221 });
      expect(effective.network.unix.address).toBe(join(FIXTURES, "besterUNIXSock"));
      expect(Object.keys(effective.handlers.typeMap)).toEqual(["type1", "type2"]);
    });

    test("check reports every problem with its path, exit 1", async () => {
      const dir = tempDir();
      const file = join(dir, "bad.conf");
      writeFileSync(
        file,
        JSON.stringify({
          network: { types: ["tcp4", "tcp5"], tcp4: { address: "0.0.0.0", port: "22x3" } },
          limits: { maxFrameBytes: -1 },
        }),
      );
      const { code, stderr } = await runCli(runtime, ["check", file]);
      expect(code).toBe(1);
      expect(stderr).toContain('network.tcp4.port: expected a port 0-65535, got "22x3"');
      expect(stderr).toContain("network.types[1]:");
      expect(stderr).toContain("limits.maxFrameBytes:");
    });

    test("serve with an invalid config exits 1 without listening", async () => {
      const dir = tempDir();
      const file = join(dir, "bad.conf");
      writeFileSync(file, "{ not json");
      const { code, stderr } = await runCli(runtime, ["serve", file]);
      expect(code).toBe(1);
      expect(stderr).toContain("bad.conf");
    });

    test("serve on Bun restarts itself in place with a 1 s allocator purge delay, passed to its handlers; an operator's value stays", async () => {
      // Bun's mimalloc reads MIMALLOC_PURGE_DELAY only at start (docs/PERFORMANCE.md, "MIMALLOC_PURGE_DELAY on Bun"); Deno has no mimalloc.
      const expected = ENGINE[runtime] === "bun" ? "1000" : undefined;
      const { MIMALLOC_PURGE_DELAY: _, ...plain } = process.env;
      const dir = tempDir();
      const handlers = { availableTypes: ["t"], typeMap: { t: scripted(join(dir, "t.sock")) } };
      const own = await startGateway(runtime, { handlers }, { env: plain });
      try {
        // The pid the test started is the one serving: the restart replaced it in place.
        expect(environOf(own.child.pid!).MIMALLOC_PURGE_DELAY).toBe(expected);
        const started = await own.waitForLog((r) => r.msg === "handler started");
        expect(environOf(started.pid).MIMALLOC_PURGE_DELAY).toBe(expected);
      } finally {
        await own.stop();
      }
      const given = await startGateway(runtime, {}, { env: { ...plain, MIMALLOC_PURGE_DELAY: "250" } });
      try {
        expect(environOf(given.child.pid!).MIMALLOC_PURGE_DELAY).toBe("250");
      } finally {
        await given.stop();
      }
    });

    test("a stale socket file is replaced; a regular file is not", async () => {
      const dir = tempDir();
      const stale = join(dir, "stale.sock");
      // A bound socket nobody listens on: what a crashed server leaves behind.
      execFileSync("python3", ["-c", `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
      const gw = await startGateway(runtime, { network: { types: ["unix"], unix: { address: stale } } });
      (await login(gw.unix, "after-crash")).close();
      await gw.stop();

      const regular = join(dir, "regular.sock");
      writeFileSync(regular, "precious");
      await expect(
        startGateway(runtime, { network: { types: ["unix"], unix: { address: regular } } }),
      ).rejects.toThrow(/exists and is not a socket/);
    });
  });
}
