/**
 * Measures time from start to `ready` for the binary, `bun run` and Deno, and
 * the binary's size; prints a Markdown table (the README's numbers).
 *
 *     bun build/measure-startup.ts [--runs N]      (npm run measure; build the binary first)
 *
 * Each run starts the embedded default (its bundled handlers included) on free
 * ports in a fresh run dir, and stops it before the next run starts.
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { onFreePorts, printedDefault, serve } from "../test/_harness/embedded.ts";
import { BINARY, ROOT, RUNTIMES, type RuntimeName } from "../test/_harness/runtimes.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got ${values.runs}`);
if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build:host first`);

const LABELS: Record<RuntimeName, string> = { binary: "binary", bun: "bun run", deno: "deno run" };

async function once(runtime: RuntimeName): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "bester-measure-"));
  try {
    const opts = { cwd: dir, env: { ...process.env, XDG_RUNTIME_DIR: dir } as Record<string, string> };
    const conf = join(dir, "bester.conf");
    writeFileSync(conf, JSON.stringify(onFreePorts(printedDefault(RUNTIMES[runtime], opts))));
    const gw = await serve(RUNTIMES[runtime], ["--config", conf], opts);
    gw.child.kill("SIGTERM");
    const code = await gw.exited;
    if (code !== 0) throw new Error(`${runtime}: exit ${code} after SIGTERM\n${gw.log()}`);
    return gw.readyAfterMs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bare process start for comparison: `version` loads the program and exits. */
function version(runtime: RuntimeName): number {
  const [cmd, ...pre] = RUNTIMES[runtime];
  const started = performance.now();
  const r = spawnSync(cmd!, [...pre, "version"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${runtime} version: exit ${r.status}\n${r.stderr}`);
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [];
for (const runtime of ["binary", "bun", "deno"] as const) {
  await once(runtime); // warm the file cache (and Deno's module cache) first
  const times: number[] = [];
  const versions: number[] = [];
  for (let i = 0; i < runs; i++) {
    times.push(await once(runtime));
    versions.push(version(runtime));
  }
  times.sort((a, b) => a - b);
  const cmd = RUNTIMES[runtime].map((a) => (a.startsWith(ROOT) ? relative(ROOT, a) : a)).join(" ");
  rows.push(
    `| ${LABELS[runtime]} | \`${cmd} serve\` | ${median(times).toFixed(0)} ms (${times[0]!.toFixed(0)}–${times.at(-1)!.toFixed(0)}) | ${median(versions).toFixed(0)} ms |`,
  );
}

console.log(`binary: ${relative(ROOT, BINARY)}, ${(statSync(BINARY).size / 1e6).toFixed(1)} MB`);
console.log(`median of ${runs} runs each, after one warm-up run; serve runs the embedded default on free ports:\n`);
console.log("| how | command | start to `ready` (min–max) | `version` |\n| --- | --- | --- | --- |");
for (const r of rows) console.log(r);
