/**
 * Compiles src/main.ts into one self-contained executable per platform with
 * `bun build --compile`, into dist/, plus the client SDK for browsers
 * (dist/bester-client.js, build/browser-client.ts) and dist/SHA256SUMS.
 *
 *     bun build/compile.ts               every target in TARGETS (npm run build)
 *     bun build/compile.ts --host        only this machine's target (npm run build:host)
 *     bun build/compile.ts linux-arm64   the targets named
 *
 * The version is embedded because src/version.ts imports package.json, which
 * the bundler inlines. Cross targets need Bun's runtime for that platform,
 * which `bun build` fetches (and caches) on first use.
 * @module
 */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeBrowserClient } from "./browser-client.ts";
import { CHECKSUM_FILE, TARGETS, type Target, binaryName, hostPlatform, hostTarget } from "./targets.ts";

const ROOT = resolve(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const ENTRY = join(ROOT, "src/main.ts");
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

function fail(message: string): never {
  console.error(`build: ${message}`);
  process.exit(1);
}

function parseTargets(argv: string[]): { targets: Target[]; all: boolean } {
  if (argv.includes("--host")) {
    const host = hostTarget();
    if (!host) fail(`no release target for this machine (${hostPlatform()}); targets: ${TARGETS.join(", ")}`);
    return { targets: [host], all: false };
  }
  for (const a of argv) {
    if (!(TARGETS as readonly string[]).includes(a)) fail(`unknown target '${a}'; targets: ${TARGETS.join(", ")} (or --host)`);
  }
  return argv.length ? { targets: argv as Target[], all: false } : { targets: [...TARGETS], all: true };
}

/** What the file header says the executable is, e.g. "linux-x64": catches a target that produced the wrong thing. */
export function executableKind(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) === 0x7f454c46) {
    const machine = view.getUint16(18, true); // e_machine of a little-endian ELF
    return `linux-${machine === 0x3e ? "x64" : machine === 0xb7 ? "arm64" : `machine-${machine}`}`;
  }
  if (view.getUint32(0, true) === 0xfeedfacf) {
    const cpu = view.getUint32(4, true); // 64-bit Mach-O cputype
    return `darwin-${cpu === 0x01000007 ? "x64" : cpu === 0x0100000c ? "arm64" : `cpu-${cpu}`}`;
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) {
    const pe = view.getUint32(0x3c, true); // offset of the "PE\0\0" header
    if (view.getUint32(pe) === 0x50450000) {
      const machine = view.getUint16(pe + 4, true);
      return `windows-${machine === 0x8664 ? "x64" : machine === 0xaa64 ? "arm64" : `machine-${machine}`}`;
    }
  }
  return "unknown";
}

/**
 * Checks a Mach-O's code signature the way macOS does: the CodeDirectory's
 * SHA-256 page hashes must match the file up to the signature. Apple Silicon
 * refuses to start a binary whose signature does not (`bun build --compile`
 * has shipped darwin binaries with a stale one), so the build says which.
 */
export function machoSignature(file: Uint8Array): "valid" | "unsigned" | `invalid: ${string}` {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  let at = 32; // past the 64-bit Mach-O header
  let sigOffset: number | undefined;
  for (let i = 0, n = view.getUint32(16, true); i < n; i++, at += view.getUint32(at + 4, true)) {
    if (view.getUint32(at, true) === 0x1d) sigOffset = view.getUint32(at + 8, true); // LC_CODE_SIGNATURE
  }
  if (sigOffset === undefined) return "unsigned";
  // SuperBlob and CodeDirectory fields are big-endian.
  for (let i = 0, n = view.getUint32(sigOffset + 8); i < n; i++) {
    const blob = sigOffset + view.getUint32(sigOffset + 16 + i * 8);
    if (view.getUint32(sigOffset + 12 + i * 8) !== 0 || view.getUint32(blob) !== 0xfade0c02) continue;
    const hashOffset = view.getUint32(blob + 16);
    const slots = view.getUint32(blob + 28);
    const codeLimit = view.getUint32(blob + 32);
    const [hashSize, hashType, pageShift] = [view.getUint8(blob + 36), view.getUint8(blob + 37), view.getUint8(blob + 39)];
    if (hashType !== 2) return `invalid: hash type ${hashType}, expected SHA-256`;
    if (codeLimit !== sigOffset) return `invalid: it covers ${codeLimit} bytes, the code runs to ${sigOffset}`;
    let bad = 0;
    for (let s = 0; s < slots; s++) {
      const page = file.subarray(s << pageShift, Math.min((s + 1) << pageShift, codeLimit));
      const want = file.subarray(blob + hashOffset + s * hashSize, blob + hashOffset + (s + 1) * hashSize);
      if (Buffer.compare(createHash("sha256").update(page).digest(), want) !== 0) bad++;
    }
    return bad ? `invalid: ${bad} of ${slots} page hashes differ` : "valid";
  }
  return "invalid: no CodeDirectory";
}

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Runs the freshly built host binary from an empty folder: it must start and report the package version. */
function smokeTest(path: string): string {
  const cwd = mkdtempSync(join(tmpdir(), "bester-smoke-"));
  try {
    const out = execFileSync(path, ["version"], { cwd, encoding: "utf8", timeout: 30_000 }).trim();
    const expected = `bester ${VERSION} (bun ${Bun.version})`;
    if (out !== expected) fail(`${path} version printed '${out}', expected '${expected}'`);
    return "ran `version`";
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

async function compile(target: Target, staging: string): Promise<string> {
  const staged = join(staging, binaryName(target));
  await Bun.build({
    entrypoints: [ENTRY],
    compile: {
      target: `bun-${target}`,
      outfile: staged,
      // A gateway must behave the same whatever folder it is started in:
      // no .env or bunfig.toml from the working directory.
      autoloadDotenv: false,
      autoloadBunfig: false,
    },
    minify: true,
    // Embedded (zstd), so a crash report points at src/ lines, not minified ones.
    sourcemap: "linked",
    // Parsed at build time: every start (the gateway and each bundled handler) skips it.
    // ESM, because bytecode otherwise implies CJS, which has no top-level await.
    bytecode: true,
    format: "esm",
  });
  return staged;
}

async function main(): Promise<void> {
  const { targets, all } = parseTargets(process.argv.slice(2));
  mkdirSync(DIST, { recursive: true });
  if (all) {
    // A full build is a release: nothing stale may sit beside it.
    for (const f of readdirSync(DIST)) if (f.startsWith("bester") || f === CHECKSUM_FILE) rmSync(join(DIST, f), { force: true });
  }
  // First: the binaries embed its copy in src/web/ (the gateway serves it).
  try {
    const bytes = await writeBrowserClient();
    console.log(`${"bester-client.js".padEnd(24)} ${(bytes / 1024).toFixed(1).padStart(6)} KB  the client SDK for browsers`);
  } catch (err) {
    fail((err as Error).message);
  }
  // Built aside, then renamed in: a process still running the old binary keeps its
  // inode, and nobody ever sees a half-written file.
  const staging = mkdtempSync(join(DIST, ".staging-"));
  const host = hostTarget();
  const failed: string[] = [];
  try {
    for (const target of targets) {
      const started = performance.now();
      let staged: string;
      try {
        staged = await compile(target, staging);
      } catch (err) {
        const logs = (err as AggregateError).errors?.map(String).join("\n") ?? String(err);
        console.error(`build: ${target} failed:\n${logs}`);
        failed.push(target);
        continue;
      }
      const bytes = readFileSync(staged);
      const kind = executableKind(bytes);
      if (kind !== target) fail(`${binaryName(target)} is a ${kind} executable, expected ${target}`);
      const final = join(DIST, binaryName(target));
      renameSync(staged, final);
      let checked = target === host ? smokeTest(final) : "header checked, not run";
      if (target.startsWith("darwin-")) {
        // Not fatal here: only macOS can re-sign (the release workflow does, then checks again).
        const signature = machoSignature(bytes);
        checked += signature === "valid" ? ", ad-hoc signature valid" : `; signature ${signature}: run codesign --force --sign - on macOS`;
      }
      const mb = (statSync(final).size / 1e6).toFixed(1);
      console.log(`${binaryName(target).padEnd(24)} ${mb.padStart(6)} MB  ${((performance.now() - started) / 1000).toFixed(1)} s  ${checked}`);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }

  // The checksum file always matches what dist/ holds, whichever targets this run built.
  const binaries = readdirSync(DIST).filter((f) => f.startsWith("bester-")).sort();
  writeFileSync(join(DIST, CHECKSUM_FILE), binaries.map((f) => `${sha256(join(DIST, f))}  ${f}\n`).join(""));
  console.log(`${CHECKSUM_FILE}: ${binaries.length} file(s), bester ${VERSION}, bun ${Bun.version}`);
  if (failed.length) fail(`not built: ${failed.join(", ")}`);
}

if (import.meta.main) await main();
