/**
 * The runtime matrix: the argv that runs the gateway's entry point under
 * each runtime. Suites are written once and registered per runtime.
 */
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
const BIN = join(ROOT, "node_modules/.bin");

export type RuntimeName = "bun" | "deno";

export const RUNTIMES: Record<RuntimeName, string[]> = {
  bun: [join(BIN, "bun"), "run", join(ROOT, "src/main.ts")],
  deno: [join(BIN, "deno"), "run", "--allow-all", "--config", join(ROOT, "deno.json"), join(ROOT, "src/main.ts")],
};
