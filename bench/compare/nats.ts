/**
 * Bester next to NATS on the same flow, in the same session, on this machine:
 *
 *   NATS:    T --PUB relay--> nats-server --MSG--> relay subscriber --PUB g.G--> nats-server --MSG--> G
 *   Bester:  T --"relay"--> gateway --> relay handler --sendClients [G]--> gateway --> G
 *   Minimal: the same as Bester, through minimal-relay.ts instead of the gateway
 *            (the same relay handler, `bester bench handler`, in its own process)
 *
 * All are driven by the same load generator (src/bench/load.ts): N pairs in
 * one process, WINDOW messages in flight per sender (sent, not yet received by
 * its partner), latency from the send time each message carries. For every
 * (size, pairs) the NATS run, `bester bench` runs and minimal relay runs
 * alternate, so drift on the machine hits all alike. The report ends with
 * each bester scenario's msgs/s over NATS's and over the minimal relay's in
 * the same mode, repeat by repeat: the steadiest figure on a noisy machine.
 *
 * Needs `nats-server` on PATH (Debian: apt-get install nats-server). The
 * runtime that runs this script runs the bester processes it starts
 * (`deno run -A --config deno.json bench/compare/nats.ts …` for Deno).
 * Usage: bun run bench/compare/nats.ts [--pairs 1,8] [--size 100,4096] [--window 64]
 *          [--duration 5] [--warmup 3] [--mode persistent,per-message] [--repeat 1] [--json]
 *          [--bester LABEL=DIR[:MODE+MODE],...]   (other checkouts of bester, e.g. a baseline worktree)
 *          [--minimal per-message,persistent]    (also the minimal relay gateway, minimal-relay.ts,
 *                                                 in these handler modes; default: none)
 * @module
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { besterTransport } from "../../src/bench/bester-transport.ts";
import { runLoad, type LoadSink, type LoadTransport, type PairLink } from "../../src/bench/load.ts";
import { machineInfo, type ProcessUsage, startUsage, vmKiB } from "../../src/bench/proc.ts";
import { formatRuns, formatSettings, type RunReport, runReport } from "../../src/bench/report.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import type { Child, Runtime } from "../../src/runtime/types.ts";
import { connectNats } from "./nats-wire.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url).href);
const { values } = parseArgs({
  options: {
    pairs: { type: "string", default: "1,8" },
    size: { type: "string", default: "100,4096" },
    window: { type: "string", default: "64" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "3" },
    mode: { type: "string", default: "persistent" },
    repeat: { type: "string", default: "1" },
    /** Bester checkouts to run, LABEL=DIR[:MODES],...; default: this one, as "bester". */
    bester: { type: "string" },
    /** Handler modes to run the minimal relay gateway (minimal-relay.ts) in; default: none. */
    minimal: { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
});
const pairsList = values.pairs.split(",").map(Number);
const sizes = values.size.split(",").map(Number);
const window = Number(values.window);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const repeat = Number(values.repeat);
const minimalModes = values.minimal.split(",").filter((m) => m !== "");
for (const m of minimalModes) {
  if (m !== "per-message" && m !== "persistent") {
    console.error(`--minimal: unknown mode '${m}'; expected per-message, persistent`);
    process.exit(2);
  }
}
const runtime = await loadRuntime();
// The settings `bester serve` and `bester bench` give themselves, for this
// process (the NATS and minimal-relay load generator) and, inherited, for
// every process it starts: each side's Bun processes run alike.
runtime.useServerSettings();
const runId = randomBytes(4).toString("hex");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Spawns and waits for a line on stdout/stderr matching `ready`. */
async function spawnUntil(argv: string[], ready: RegExp, what: string): Promise<{ child: Child; lines: string[] }> {
  const lines: string[] = [];
  let wake: (() => void) | undefined;
  const child = runtime.spawn(argv, {
    onOutput(_s, line) {
      lines.push(line);
      wake?.();
    },
  });
  let exited = false;
  void child.exited.then(() => {
    exited = true;
    wake?.();
  });
  const deadline = Date.now() + 15_000;
  while (!lines.some((l) => ready.test(l))) {
    if (exited || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${what} did not start:\n${lines.join("\n")}`);
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, 50);
      wake = () => (clearTimeout(t), r());
    });
  }
  return { child, lines };
}

async function stop(child: Child): Promise<void> {
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await child.exited;
  clearTimeout(t);
}

function natsTransport(rt: Runtime, port: number, size: number): LoadTransport {
  const text = new TextDecoder();
  return {
    async openPair(i: number, sink: LoadSink): Promise<PairLink> {
      const to = `bench-g${i}`;
      const at = { kind: "tcp4" as const, host: "127.0.0.1", port };
      let closing = false;
      const receiver = await connectNats(rt, at, to);
      receiver.subscribe(`g.${to}`, (payload) => {
        const data = JSON.parse(text.decode(payload)) as { r?: unknown; s?: unknown; t?: unknown };
        if (data.r === runId) sink.delivered(i, Number(data.s), Number(data.t));
        else sink.unexpected(i, "a message of another run");
      });
      await receiver.flush();
      const sender = await connectNats(rt, at, `bench-t${i}`);
      void receiver.closed.then((why) => closing || sink.broken(i, why));
      void sender.closed.then((why) => closing || sink.broken(i, why));
      // The same data as the Bester bench sends (src/bench/bester-transport.ts).
      const head = `{"to":"${to}","r":"${runId}","s":`;
      const fixed = head.length + 6 + 5 + 12 + 6 + 2;
      const tail = `,"p":"${"x".repeat(Math.max(0, size - fixed))}"}`;
      return {
        send(seq, sentAt) {
          sender.publish("relay", `${head}${seq},"t":${sentAt}${tail}`);
        },
        close() {
          closing = true;
          sender.close();
          receiver.close();
        },
      };
    },
  };
}

/** Argv that runs a script of a bester checkout on this runtime. */
function scriptArgv(root: string, script: string, ...args: string[]): string[] {
  return runtime.name === "bun"
    ? [process.execPath, `${root}${script}`, ...args]
    : [process.execPath, "run", "-A", "--config", `${root}deno.json`, `${root}${script}`, ...args];
}

/**
 * One load run in this process against servers already started: CPU of the
 * "gateway" and "handler" processes and of this one over the measured interval.
 */
async function measuredRun(
  scenario: string,
  transport: LoadTransport,
  pids: { gateway: number; handler: number },
  pairs: number,
  size: number,
  expectReports: boolean,
): Promise<RunReport> {
  const usage: Record<string, ReturnType<typeof startUsage>> = {};
  const done: Record<string, ProcessUsage | null> = {};
  let started = 0;
  const result = await runLoad(transport, {
    pairs,
    window,
    warmupMs: warmupS * 1000,
    durationMs: durationS * 1000,
    drainMs: 6_000,
    maxMessagesPerPair: Number.MAX_SAFE_INTEGER,
    expectReports,
    onPhase(phase) {
      if (phase === "measure") {
        started = performance.now();
        usage.gateway = startUsage(pids.gateway);
        usage.handler = startUsage(pids.handler);
        usage.self = startUsage(process.pid);
      } else if (phase === "drain") {
        const wall = (performance.now() - started) / 1000;
        for (const k of Object.keys(usage)) done[k] = usage[k]!.finish(wall);
      }
    },
    onProgress: values.json ? undefined : (p) => process.stderr.write(`[${scenario} ${pairs}x${size}B] ${p.elapsedSeconds} s ${p.rate} msgs/s\n`),
  });
  for (const k of ["gateway", "handler"] as const) {
    if (done[k]) done[k] = { ...done[k]!, peakRssKiB: vmKiB(pids[k], "VmHWM") };
  }
  return runReport({ scenario, size, warmupSeconds: warmupS, durationSeconds: durationS }, result, {
    gateway: done.gateway ?? null,
    handler: done.handler ?? null,
    loadGenerator: done.self ?? null,
  });
}

async function natsRun(pairs: number, size: number): Promise<RunReport> {
  const port = await freePort();
  const server = await spawnUntil(["nats-server", "-a", "127.0.0.1", "-p", String(port)], /Server is ready/, "nats-server");
  const relayArgv = scriptArgv(ROOT, "bench/compare/nats-relay.ts", "127.0.0.1", String(port));
  const relay = await spawnUntil(relayArgv, /relay: subscribed/, "the NATS relay subscriber");
  try {
    const pids = { gateway: server.child.pid, handler: relay.child.pid };
    return await measuredRun("nats", natsTransport(runtime, port, size), pids, pairs, size, false);
  } finally {
    await stop(relay.child);
    await stop(server.child);
  }
}

/**
 * The minimal relay gateway (minimal-relay.ts) in `mode`, with bester's relay
 * handler (`bester bench handler`) and the bench's own Bester clients.
 */
async function minimalRun(mode: string, pairs: number, size: number): Promise<RunReport> {
  const dir = mkdtempSync(join(tmpdir(), "bester-minimal-"));
  const socket = join(dir, "relay.sock");
  try {
    const handler = await spawnUntil(scriptArgv(ROOT, "src/main.ts", "bench", "handler", socket), /relay: listening on/, "the relay handler");
    try {
      const port = await freePort();
      const relayArgv = scriptArgv(ROOT, "bench/compare/minimal-relay.ts", "--port", String(port), "--handler", socket, "--mode", mode);
      const relay = await spawnUntil(relayArgv, /minimal-relay: listening on/, "the minimal relay");
      try {
        const transport = besterTransport({
          runtime,
          target: { kind: "tcp4", host: "127.0.0.1", port },
          scenario: "relay",
          type: "relay",
          password: "bench",
          size,
          runId,
          window,
        });
        return await measuredRun(`minimal/${mode}`, transport, { gateway: relay.child.pid, handler: handler.child.pid }, pairs, size, true);
      } finally {
        await stop(relay.child);
      }
    } finally {
      await stop(handler.child);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Checkout {
  label: string;
  root: string;
  modes: string;
}

/** --bester base=/tmp/a:persistent,... : which checkouts of bester to run, each with its scenarios. */
const checkouts: Checkout[] = values.bester
  ? values.bester.split(",").map((spec) => {
      const [label, rest] = spec.split("=") as [string, string];
      const [dir, modes] = rest.split(":") as [string, string | undefined];
      return { label, root: dir.endsWith("/") ? dir : `${dir}/`, modes: (modes ?? values.mode).replaceAll("+", ",") };
    })
  : [{ label: "", root: ROOT, modes: values.mode }];

async function besterRun(checkout: Checkout, pairs: number, size: number): Promise<RunReport[]> {
  const main = `${checkout.root}src/main.ts`;
  const argv = [
    ...(runtime.name === "bun" ? [process.execPath, main] : [process.execPath, "run", "-A", "--config", `${checkout.root}deno.json`, main]),
    "bench", "--json", "--quiet",
    "--mode", checkout.modes, "--pairs", String(pairs), "--size", String(size), "--window", String(window),
    "--duration", String(durationS), "--warmup", String(warmupS),
  ];
  const out: string[] = [];
  const child = runtime.spawn(argv, { onOutput: (stream, line) => (stream === "stdout" ? out.push(line) : process.stderr.write(`${line}\n`)) });
  await child.exited;
  const report = JSON.parse(out.join("\n")) as { runs: RunReport[] };
  return checkout.label ? report.runs.map((r) => ({ ...r, scenario: `${r.scenario}@${checkout.label}` })) : report.runs;
}

const runs: RunReport[] = [];
/** Which repeat each run belongs to: runs of one repeat and case ran back to back, so their ratio is the steadiest figure. */
const repeatOf = new Map<RunReport, number>();
const machine = machineInfo();
for (let r = 0; r < repeat; r++) {
  const first = runs.length;
  for (const size of sizes) {
    for (const pairs of pairsList) {
      runs.push(await natsRun(pairs, size));
      for (const checkout of checkouts) runs.push(...(await besterRun(checkout, pairs, size)));
      for (const mode of minimalModes) runs.push(await minimalRun(mode, pairs, size));
    }
  }
  for (const run of runs.slice(first)) repeatOf.set(run, r);
}

/** Per (system, pairs, size): the run with the median msgs/s, so one disturbed run does not decide. */
function medians(all: RunReport[]): RunReport[] {
  const groups = new Map<string, RunReport[]>();
  for (const r of all) {
    const key = `${r.size}|${r.pairs}|${r.scenario}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()].map((g) => [...g].sort((a, b) => a.messagesPerSecond - b.messagesPerSecond)[Math.floor((g.length - 1) / 2)]!);
}

interface Ratio {
  size: number;
  pairs: number;
  scenario: string;
  /** The reference system: "nats", or the minimal relay in the same mode. */
  over: string;
  /** msgs/s of the scenario ÷ msgs/s of the reference, one per repeat. */
  byRepeat: number[];
  median: number;
}

/**
 * Every bester scenario against NATS and against the minimal relay in its
 * mode, repeat by repeat: machine drift between repeats cancels out.
 */
function ratios(all: RunReport[]): Ratio[] {
  const find = (size: number, pairs: number, scenario: string, r: number) =>
    all.find((x) => x.size === size && x.pairs === pairs && x.scenario === scenario && repeatOf.get(x) === r);
  const out: Ratio[] = [];
  const seen = new Set<string>();
  for (const run of all) {
    if (run.scenario === "nats" || run.scenario.startsWith("minimal/")) continue;
    const key = `${run.size}|${run.pairs}|${run.scenario}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const mode = run.scenario.split("@")[0]!;
    for (const over of ["nats", `minimal/${mode}`]) {
      const byRepeat: number[] = [];
      for (let r = 0; r < repeat; r++) {
        const mine = find(run.size, run.pairs, run.scenario, r);
        const theirs = find(run.size, run.pairs, over, r);
        if (mine && theirs && theirs.messagesPerSecond > 0) byRepeat.push(mine.messagesPerSecond / theirs.messagesPerSecond);
      }
      if (byRepeat.length === 0) continue;
      const sorted = [...byRepeat].sort((a, b) => a - b);
      out.push({ size: run.size, pairs: run.pairs, scenario: run.scenario, over, byRepeat, median: sorted[Math.floor((sorted.length - 1) / 2)]! });
    }
  }
  return out;
}

function formatRatios(list: Ratio[]): string {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const rows = [["size", "pairs", "scenario", "over", "run by run", "median"]];
  for (const r of list) rows.push([String(r.size), String(r.pairs), r.scenario, r.over, r.byRepeat.map(pct).join(" "), pct(r.median)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

if (values.json) {
  console.log(
    JSON.stringify(
      { runtime: `${runtime.name} ${runtime.version}`, settings: runtime.serverSettings(), machine, runs, medians: repeat > 1 ? medians(runs) : undefined, ratios: ratios(runs) },
      null,
      2,
    ),
  );
} else {
  console.log(
    `NATS (nats-server, relay subscriber), bester (${values.mode})` +
      (minimalModes.length > 0 ? ` and the minimal relay (${minimalModes.join(",")})` : "") +
      ` on ${runtime.name} ${runtime.version}; ` +
      `${machine.cpus} CPUs (${machine.cpuModel}); load average ${machine.loadAverage} at start; ` +
      `runtime settings, for every process run here: ${formatSettings(runtime.serverSettings())}`,
  );
  console.log('For "nats" rows, the gateway columns are nats-server and the handler columns the relay subscriber.');
  if (minimalModes.length > 0) {
    console.log('For "minimal/MODE" rows, the gateway columns are minimal-relay.ts and the handler columns `bester bench handler`.');
  }
  console.log("");
  console.log(formatRuns(runs));
  if (repeat > 1) {
    console.log(`\nMedian of ${repeat} runs (by msgs/s), each row one whole run:\n`);
    console.log(formatRuns(medians(runs)));
  }
  console.log("\nmsgs/s over NATS and over the minimal relay in the same mode, within each repeat:\n");
  console.log(formatRatios(ratios(runs)));
}
