/**
 * Makes sure the binary under test is built from the sources in the tree.
 * `npm test` builds it first (pretest); this covers `bun test` run directly
 * after an edit, so the binary suite never passes on a stale executable.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { BINARY, ROOT } from "./runtimes.ts";

/** What the compiled binary is built from. */
const INPUTS = ["src", "handlers", "build", "package.json"];

/** Newest .ts/.json under `path` (other files, e.g. a handler's __pycache__, do not go into the binary). */
function newestMtime(path: string): number {
  const st = statSync(path);
  if (st.isDirectory()) return Math.max(0, ...readdirSync(path).map((name) => newestMtime(join(path, name))));
  return /\.(ts|json)$/.test(path) ? st.mtimeMs : 0;
}

export function ensureFreshBinary(): void {
  const built = existsSync(BINARY) ? statSync(BINARY).mtimeMs : 0;
  const newest = Math.max(...INPUTS.map((p) => join(ROOT, p)).filter(existsSync).map(newestMtime));
  if (built >= newest) return;
  console.error(`${BINARY} is ${built ? "older than the sources" : "missing"}: building it (npm run build:host)`);
  execFileSync(join(ROOT, "node_modules/.bin/bun"), [join(ROOT, "build/compile.ts"), "--host"], { stdio: "inherit" });
}
