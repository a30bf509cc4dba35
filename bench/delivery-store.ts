/**
 * The delivery stores on their own, without a gateway: appends per second
 * and their latency, for the SQLite store and the Redis store (one
 * redis-server, and optionally a three-master Redis Cluster on this machine).
 *
 * Calls are made the way the gateway makes them: WINDOW appends in flight,
 * each completion issues the next in the same turn, so the calls of a turn
 * go out together (one SQLite transaction, one Redis write per node).
 * Latency runs from the call to its answer. Every ACK_EVERY kept messages a
 * user's messages are acknowledged (not timed), as a client would, which
 * keeps each inbox within the default limits.
 *
 * Redis runs with `appendonly yes, appendfsync everysec` (what survives a
 * crash of the process, like SQLite's WAL with synchronous=NORMAL); its CPU
 * per append is read from /proc, as is this process's.
 *
 * With --repeat N the whole matrix runs N times, engines taking turns, and
 * the table gives each figure's median over the runs (a shared machine
 * drifts; the median is the steadier figure).
 *
 * Usage: bun run bench/delivery-store.ts [--engines sqlite,redis,cluster] [--users 1,1000]
 *          [--size 100,4096] [--window 128] [--duration 3] [--warmup 1] [--repeat 1]
 *          [--dir DIR] [--json]
 * @module
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Histogram } from "../src/bench/histogram.ts";
import { cpuSeconds, machineInfo, round } from "../src/bench/proc.ts";
import { openRedisDeliveryStore } from "../src/delivery/redis.ts";
import { openSqliteDeliveryStore } from "../src/delivery/sqlite.ts";
import type { DeliveryStore, InboxLimits } from "../src/delivery/store.ts";
import { DEFAULT_INBOX_MAX_AGE_SECONDS, DEFAULT_INBOX_MAX_BYTES, DEFAULT_INBOX_MAX_MESSAGES } from "../src/config/defaults.ts";
import { loadRuntime } from "../src/runtime/index.ts";
import { startRedisCluster } from "../test/_harness/redis-cluster.ts";
import { startRedis } from "../test/_harness/redis.ts";

/** A user's messages are acknowledged every this many appends. */
const ACK_EVERY = 10;
/** A run stops after this many appends even if its time is not up: every loop bounded. */
const MAX_APPENDS = 5_000_000;

const { values: opts } = parseArgs({
  options: {
    engines: { type: "string", default: "sqlite,redis" },
    users: { type: "string", default: "1,1000" },
    size: { type: "string", default: "100,4096" },
    window: { type: "string", default: "128" },
    duration: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    repeat: { type: "string", default: "1" },
    dir: { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
const engines = list(opts.engines!) as Array<"sqlite" | "redis" | "cluster">;
const userCounts = list(opts.users!).map(Number);
const sizes = list(opts.size!).map(Number);
const windows = list(opts.window!).map(Number);
const durationMs = Number(opts.duration) * 1000;
const warmupMs = Number(opts.warmup) * 1000;
const LIMITS: InboxLimits = {
  maxMessages: DEFAULT_INBOX_MAX_MESSAGES,
  maxBytes: DEFAULT_INBOX_MAX_BYTES,
  maxAgeSeconds: DEFAULT_INBOX_MAX_AGE_SECONDS,
};

interface Result {
  engine: string;
  users: number;
  size: number;
  window: number;
  appendsPerSecond: number;
  p50: number | null;
  p99: number | null;
  refused: number;
  /** CPU microseconds per append: this process, and the Redis servers together. */
  clientCpuUs: number | null;
  redisCpuUs: number | null;
}

/** Data of `size` bytes of JSON text: a string of x's in quotes. */
function dataOf(size: number): string {
  return JSON.stringify("x".repeat(Math.max(0, size - 2)));
}

/** Appends for `ms` with `window` in flight; resolves with the latency histogram once every call is answered. */
async function drive(store: DeliveryStore, users: string[], data: string, window: number, ms: number) {
  const hist = new Histogram();
  const unacked = new Map<string, number>();
  const acks: Array<Promise<unknown>> = [];
  let issued = 0;
  let answered = 0;
  let refused = 0;
  const end = performance.now() + ms;
  await new Promise<void>((resolve, reject) => {
    const issue = () => {
      const user = users[issued % users.length]!;
      issued++;
      const start = performance.now();
      store.append(user, "bench", data, true).then((r) => {
        hist.recordMs(performance.now() - start);
        answered++;
        if (!r.ok) refused++;
        else {
          const n = (unacked.get(user) ?? 0) + 1;
          unacked.set(user, n);
          if (n >= ACK_EVERY) {
            unacked.set(user, 0);
            acks.push(store.ack(user, r.seq));
          }
        }
        if (performance.now() < end && issued < MAX_APPENDS) issue();
        else if (answered === issued) resolve();
      }, reject);
    };
    for (let i = 0; i < window; i++) issue();
  });
  await Promise.all(acks);
  return { hist, answered, refused };
}

interface Engine {
  name: string;
  redisPids: number[];
  open(prefix: string): Promise<DeliveryStore>;
  stop(): Promise<void>;
}

async function startEngine(name: "sqlite" | "redis" | "cluster", dir: string, runtime: Awaited<ReturnType<typeof loadRuntime>>): Promise<Engine> {
  const persist = ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", dir];
  if (name === "sqlite") {
    let n = 0;
    return { name, redisPids: [], open: () => openSqliteDeliveryStore(runtime, join(dir, `delivery-${++n}.db`), () => LIMITS), stop: async () => {} };
  }
  if (name === "redis") {
    const redis = await startRedis(undefined, 10000, persist);
    return {
      name,
      redisPids: [redis.pid],
      open: (prefix) => openRedisDeliveryStore({ host: "127.0.0.1", port: redis.port, prefix }, () => LIMITS),
      stop: () => redis.stop(),
    };
  }
  const cluster = await startRedisCluster();
  return {
    name,
    redisPids: cluster.nodes.map((n) => n.pid),
    open: (prefix) => openRedisDeliveryStore({ host: "127.0.0.1", port: cluster.ports[0]!, prefix, cluster: true }, () => LIMITS),
    stop: () => cluster.stop(),
  };
}

async function measure(engine: Engine, users: number, size: number, window: number, prefix: string): Promise<Result> {
  const store = await engine.open(prefix);
  try {
    const names = Array.from({ length: users }, (_, i) => `user${i}`);
    const data = dataOf(size);
    await drive(store, names, data, window, warmupMs);
    const cpu0 = cpuSeconds(process.pid);
    const redis0 = engine.redisPids.map(cpuSeconds);
    const t0 = performance.now();
    const { hist, answered, refused } = await drive(store, names, data, window, durationMs);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(process.pid);
    const redisUsed = engine.redisPids.map((pid, i) => (cpuSeconds(pid) ?? NaN) - (redis0[i] ?? NaN)).reduce((a, b) => a + b, 0);
    const s = hist.summary();
    return {
      engine: engine.name,
      users,
      size,
      window,
      appendsPerSecond: Math.round(answered / seconds),
      p50: s.p50,
      p99: s.p99,
      refused,
      clientCpuUs: cpu0 === null || cpu1 === null ? null : round(((cpu1 - cpu0) / answered) * 1e6, 1),
      redisCpuUs: engine.redisPids.length === 0 || !Number.isFinite(redisUsed) ? null : round((redisUsed / answered) * 1e6, 1),
    };
  } finally {
    await store.close();
  }
}

function median(values: Array<number | null>): number | null {
  const v = values.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : round((v[mid - 1]! + v[mid]!) / 2, 3);
}

async function main() {
  const runtime = await loadRuntime();
  const dir = mkdtempSync(join(opts.dir ?? tmpdir(), "bester-bench-store-"));
  const runs: Result[][] = [];
  const started: Engine[] = [];
  try {
    for (const name of engines) started.push(await startEngine(name, dir, runtime));
    let n = 0;
    for (let r = 0; r < Number(opts.repeat); r++) {
      const results: Result[] = [];
      for (const users of userCounts) {
        for (const size of sizes) {
          for (const window of windows) {
            for (const engine of started) {
              results.push(await measure(engine, users, size, window, `b${++n}:`));
              if (!opts.json) console.error(`done: ${engine.name} users=${users} size=${size} window=${window} (run ${r + 1})`);
            }
          }
        }
      }
      runs.push(results);
    }
  } finally {
    await Promise.all(started.map((e) => e.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  // Each figure's median over the runs, scenario by scenario.
  const results = runs[0]!.map((first, i) => {
    const all = runs.map((run) => run[i]!);
    return {
      ...first,
      appendsPerSecond: median(all.map((x) => x.appendsPerSecond))!,
      p50: median(all.map((x) => x.p50)),
      p99: median(all.map((x) => x.p99)),
      refused: all.reduce((sum, x) => sum + x.refused, 0),
      clientCpuUs: median(all.map((x) => x.clientCpuUs)),
      redisCpuUs: median(all.map((x) => x.redisCpuUs)),
    };
  });
  const machine = machineInfo();
  if (opts.json) {
    console.log(JSON.stringify({ runtime: runtime.name, machine, ackEvery: ACK_EVERY, durationMs, runs, medians: results }, null, 2));
    return;
  }
  console.log(
    `delivery stores, ${runtime.name}, ${machine.cpus} × ${machine.cpuModel}, load ${machine.loadAverage}; ` +
      `${opts.duration} s per run after ${opts.warmup} s warm-up, ${runs.length} run(s) (medians); an ack every ${ACK_EVERY} appends per user`,
  );
  const header = ["engine", "users", "size", "window", "appends/s", "p50 ms", "p99 ms", "refused", "client µs/append", "redis µs/append"];
  const rows = results.map((r) => [r.engine, r.users, r.size, r.window, r.appendsPerSecond, r.p50, r.p99, r.refused, r.clientCpuUs, r.redisCpuUs].map((v) => (v === null ? "-" : String(v))));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padStart(widths[i]!)).join("  "));
}

await main();
