/**
 * Deno parity as a developer meets it: `deno task serve` (deno.json) runs the
 * embedded default with its bundled handlers under Deno, and Ctrl-C stops it
 * gracefully. (`deno task check` runs in every `npm test`, via `npm run check`.)
 */
import { expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chat, onFreePorts, printedDefault, serve } from "../_harness/embedded.ts";
import { tempDir } from "../_harness/gateway.ts";
import { ROOT, RUNTIMES } from "../_harness/runtimes.ts";

const DENO = join(ROOT, "node_modules/.bin/deno");

test("deno task serve: the embedded default under Deno carries a chat; Ctrl-C stops it cleanly, exit 0", async () => {
  const dir = tempDir("bester-deno-task-");
  const runtimeDir = join(dir, "xdg");
  mkdirSync(runtimeDir, { mode: 0o700 });
  // A state folder of its own too: the embedded default keeps its delivery store there.
  const opts = { cwd: ROOT, env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, XDG_STATE_HOME: join(dir, "state") } as Record<string, string> };
  // The embedded default on free ports (see test/_harness/embedded.ts for why not the fixed ones).
  const confPath = join(dir, "bester.conf");
  writeFileSync(confPath, JSON.stringify(onFreePorts(printedDefault(RUNTIMES.deno, opts))));

  // Its own process group, so the test can signal it the way a terminal does.
  const gw = await serve([DENO, "task"], ["--config", confPath], { ...opts, detached: true });
  let code: number | null;
  try {
    expect(gw.log()).toContain('runtime="deno ');
    expect(gw.log()).toMatch(/handler up handler=chat /);
    expect(await chat(RUNTIMES.deno, gw.addresses.unix!, gw.addresses.tcp4!, opts)).toEqual({ alice: 0, bob: 0 });
  } finally {
    // Ctrl-C: SIGINT to every process in the group; deno task also forwards it to the gateway.
    process.kill(-gw.child.pid!, "SIGINT");
    code = await gw.exited;
  }
  expect(gw.log()).toContain("INFO  stopped");
  expect(gw.log()).not.toContain("second stop request");
  expect(code).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});
