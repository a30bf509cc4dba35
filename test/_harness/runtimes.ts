/**
 * The runtime matrix: the argv that runs the gateway's entry point under
 * each runtime. Suites are written once and registered per runtime.
 */
import { join, resolve } from "node:path";
import { binaryName, hostPlatform } from "../../build/targets.ts";

export const ROOT = resolve(import.meta.dir, "../..");
const BIN = join(ROOT, "node_modules/.bin");

/** "binary" is the compiled executable for this machine, as `npm run build:host` makes it. */
export type RuntimeName = "bun" | "deno" | "binary";

/** dist/bester-<os>-<arch>: the executable the "binary" entry runs. */
export const BINARY = join(ROOT, "dist", binaryName(hostPlatform()));

export const RUNTIMES: Record<RuntimeName, string[]> = {
  bun: [join(BIN, "bun"), "run", join(ROOT, "src/main.ts")],
  deno: [join(BIN, "deno"), "run", "--allow-all", "--config", join(ROOT, "deno.json"), join(ROOT, "src/main.ts")],
  binary: [BINARY],
};

/** The JavaScript runtime inside each entry (what `bester version` names): the binary carries Bun. */
export const ENGINE: Record<RuntimeName, "bun" | "deno"> = { bun: "bun", deno: "deno", binary: "bun" };

/**
 * Whether the entry can run a script other than src/main.ts (a probe, a
 * handler file as its own entry point). The binary runs only what was
 * compiled into it, so tests that need this are skipped for it, by name.
 */
export const RUNS_SCRIPTS: Record<RuntimeName, boolean> = { bun: true, deno: true, binary: false };
