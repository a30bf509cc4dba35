/**
 * Bundles the client SDK for browsers (src/sdk/browser.ts) into one ES
 * module: `dist/bester-client.js` for pages of your own, and the copy the
 * gateway embeds and serves at `/bester-client.js` (src/web/bester-client.js,
 * committed, so a gateway run from source serves it with no build step).
 *
 *     bun build/browser-client.ts          writes both (npm run build does too)
 *     bun build/browser-client.ts --check  fails if the embedded copy is not what the source makes now
 *
 * A bundle that imports a built-in (`node:…`, `bun:…`) fails the build: a
 * browser has none. (Left to itself, the bundler would put a stand-in for a
 * Node module into the bundle without a word: built-ins are kept out of it,
 * so any import of one stays visible.)
 * @module
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, resolve } from "node:path";
import type { BunPlugin } from "bun";

const ROOT = resolve(import.meta.dir, "..");
const ENTRY = join(ROOT, "src/sdk/browser.ts");
export const BROWSER_CLIENT_DIST = join(ROOT, "dist/bester-client.js");
export const BROWSER_CLIENT_EMBEDDED = join(ROOT, "src/web/bester-client.js");

const BANNER = "// bester client SDK for browsers, built from src/sdk/browser.ts by build/browser-client.ts: do not edit.";

/** Every built-in module, by each name it can be imported by. */
const BUILTIN = new RegExp(`^(?:node:.*|bun|bun:.*|${builtinModules.map((m) => m.replace(/[/.]/g, "\\$&")).join("|")})$`);

/** Keeps built-ins out of the bundle as imports (the bundler's `external` does not stop its stand-ins for bare names such as "buffer"). */
const keepBuiltinsOut: BunPlugin = {
  name: "keep-builtins-out",
  setup(build) {
    build.onResolve({ filter: BUILTIN }, (args) => ({ path: args.path, external: true }));
  },
};

/** An import of a module the bundle does not contain (a built-in, kept out by BUILTINS), or a require. */
const BUILTIN_IMPORT = /\bfrom\s*["'][^"'.][^"']*["']|\bimport\s*\(\s*["'][^"'.]|\brequire\s*\(/;

export async function bundleBrowserClient(): Promise<string> {
  const result = await Bun.build({ entrypoints: [ENTRY], target: "browser", format: "esm", banner: BANNER, plugins: [keepBuiltinsOut] });
  if (!result.success) throw new Error(`bundling ${ENTRY} failed:\n${result.logs.map(String).join("\n")}`);
  const text = await result.outputs[0]!.text();
  const builtin = BUILTIN_IMPORT.exec(text);
  if (builtin) throw new Error(`the browser bundle imports a built-in module (${builtin[0]}): a browser has none`);
  return text;
}

/** Writes dist/bester-client.js and the embedded copy; returns the bundle's size in bytes. */
export async function writeBrowserClient(): Promise<number> {
  const text = await bundleBrowserClient();
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  writeFileSync(BROWSER_CLIENT_DIST, text);
  writeFileSync(BROWSER_CLIENT_EMBEDDED, text);
  return Buffer.byteLength(text);
}

async function main(): Promise<void> {
  if (process.argv.includes("--check")) {
    const fresh = await bundleBrowserClient();
    if (readFileSync(BROWSER_CLIENT_EMBEDDED, "utf8") !== fresh) {
      console.error(`build: ${BROWSER_CLIENT_EMBEDDED} is not what src/sdk/ makes now: run 'bun build/browser-client.ts' and commit it`);
      process.exit(1);
    }
    return;
  }
  const bytes = await writeBrowserClient();
  console.log(`bester-client.js ${(bytes / 1024).toFixed(1)} KiB (dist/ and src/web/)`);
}

if (import.meta.main) await main();
