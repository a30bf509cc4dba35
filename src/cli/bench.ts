import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { besterTransport } from "../bench/bester-transport.ts";
import { type BenchGateway, type ListenerKind, startBenchGateway } from "../bench/gateway.ts";
import { type BenchRedis, startBenchRedis } from "../bench/cluster.ts";
import { runIdle } from "../bench/idle.ts";
import { type Progress, runLoad } from "../bench/load.ts";
import { machineInfo, type ProcessUsage, raiseOpenFileLimit, startUsage } from "../bench/proc.ts";
import { summariseProfile } from "../bench/profile.ts";
import { runReplay } from "../bench/replay.ts";
import { handle as relayHandle } from "../bench/relay-handler.ts";
import { type BenchReport, formatHeader, formatIdle, formatReplay, formatRuns, type RunReport, runReport, type Scenario } from "../bench/report.ts";
import { DEFAULT_SESSION_WINDOW, MAX_SESSION_WINDOW } from "../config/defaults.ts";
import type { Endpoint, Runtime } from "../runtime/types.ts";
import { parseTarget } from "../sdk/client.ts";
import { serveHandler } from "../sdk/handler.ts";
import { VERSION } from "../version.ts";
import { parseCommandArgs, tlsFlagsOf, UsageError } from "./args.ts";

const SCENARIOS: readonly Scenario[] = ["dummy", "per-message", "persistent"];

const DEFAULTS = { pairs: 1, size: 100, window: 64, duration: 5, warmup: 3, type: "relay", password: "bench" } as const;

/** --replay: rounds per run, and how long one replay may take before the run fails. */
const REPLAY_ROUNDS = 5;
const REPLAY_TIMEOUT_MS = 60_000;

/** Descriptors each process keeps for itself beside the idle clients (listeners, pipes, /proc reads). */
const FD_RESERVE = 64;

/** After sending stops, what is in flight gets this long to arrive (above the default handler timeout, 5 s). */
const DRAIN_MS = 6_000;

export const BENCH_HELP = `Usage: bester bench [options]
       bester bench --idle N [options]
       bester bench --replay N [options]
       bester bench handler SOCKET

Measures the full message path: N sender/receiver pairs; each sender keeps
WINDOW messages in flight (sent, not yet received by its partner) for a
warm-up and then DURATION measured seconds, and the report gives delivered
messages/s, latency p50/p90/p99/max (each message carries its send time),
sent/received/lost/duplicated, and the gateway's CPU and peak RSS.

By default the bench starts a gateway for each run in its own process (a
generated config: a loopback listener on a free port, the relay handler in
its own process, open accounts, no control API) and the load generator is
this process, all pairs in it. With --connect it uses a running gateway.

Scenarios (--mode):
  dummy         sender bench-tI sends type "dummy"; the gateway answers itself
                (no handler); latency is the round trip
  per-message   sender bench-tI sends type "relay" {"to":"bench-gI",...}; the
                relay handler, one new connection per message (the original
                protocol), answers sendClients ["bench-gI"]; receiver bench-gI
                measures the latency
  persistent    the same, through one kept, pipelined handler connection

Options:
  -m, --mode LIST         scenarios, comma-separated, or all (default all)
  -p, --pairs LIST        sender/receiver pairs; a comma list runs each (default ${DEFAULTS.pairs})
  -s, --size LIST         bytes of each message's data, as JSON (at least ~60);
                          a comma list runs each (default ${DEFAULTS.size})
  -w, --window N          messages in flight per sender (default ${DEFAULTS.window})
  -d, --duration SEC      measured seconds per run (default ${DEFAULTS.duration})
      --warmup SEC        unmeasured seconds before (default ${DEFAULTS.warmup})
  -n, --messages N        also stop each sender after N messages
  -c, --connect ADDR      bench the gateway at HOST:PORT, [IPV6]:PORT, unix:PATH or
                          ws://HOST:PORT/PATH (its WebSocket listener)
                          instead of starting one; it needs a handler for TYPE
                          that relays (see 'bester bench handler') and accounts
                          bench-t0.., bench-g0.. (or the open account store)
      --tls               with --connect to a TCP address: dial it with TLS (a listener
                          with "tls" in its config); its certificate must name HOST
      --ca FILE           PEM file of the CA that signed that certificate (implies --tls)
      --type TYPE         message type of the relay handler (default ${DEFAULTS.type})
      --password PW       password of the bench users (default $BESTER_PASSWORD, else "${DEFAULTS.password}")
      --listener KIND     tcp4, tcp6 or unix: where the started gateway listens (default tcp4)
      --ws                the clients speak WebSocket (PROTOCOL.md §10): the started
                          gateway listens on network.ws (loopback); the load's
                          clients are the runtime adapter's WebSocket client (a
                          turn's frames in one write, as over TCP), --idle's the
                          runtime's own WebSocket class
      --idle N            instead: log in N clients that stay idle, and report the
                          gateway's RSS per connection (raises the open-file limit
                          with prlimit when it can)
      --cpu-prof DIR      profile the started gateway and relay handler (a .cpuprofile
                          each per run in DIR) and list their hot spots; profiling
                          slows them down
      --ack               receivers ask for acknowledged delivery (PROTOCOL.md §9) and
                          acknowledge every 32 messages: each message is stored before
                          it is written (the started gateway's delivery store: SQLite)
      --cluster N         also run each measurement on a cluster of N gateways (2-8,
                          docs/CLUSTER.md) on one Redis: senders on node 1, receivers
                          on node 2, the persistent scenario only; each run on one
                          gateway first, the same run on the cluster next. Starts
                          redis-server from PATH for the cluster unless --redis is given
      --replay N          instead: queue N messages for bench-g0 while it is away (each
                          reported good with "queued"), then time its login until the
                          last replayed message; ${REPLAY_ROUNDS} rounds, and their median. With
                          --ack it logs in acknowledging; --size sets the messages' size.
                          The started gateway's inbox limits are raised to hold N
      --redis ADDR        the started gateway keeps its delivery store in the Redis at
                          HOST:PORT (delivery.store "redis", a key prefix of its own)
                          instead of a SQLite file in its run directory; with
                          --cluster, the nodes' cluster is in it too
      --json              print the report as JSON on stdout
  -q, --quiet             no progress line on stderr
  -h, --help              show this help

'bester bench handler SOCKET' runs the relay handler on a UNIX socket: each
request {"to": USER, ...} is answered sendClients [USER] with the same data.
The started gateway runs it this way; run it yourself for --connect.

On Bun, bench sets MIMALLOC_PURGE_DELAY=1000 for itself and what it starts,
as serve does (see 'bester serve --help'), unless it is set already.

Exit 0 when every message arrived exactly once; 1 if any was lost or
duplicated, or the bench could not run; 2 for usage mistakes.`;

const OPTIONS = {
  mode: { type: "string", short: "m" },
  pairs: { type: "string", short: "p" },
  size: { type: "string", short: "s" },
  window: { type: "string", short: "w" },
  duration: { type: "string", short: "d" },
  warmup: { type: "string" },
  messages: { type: "string", short: "n" },
  connect: { type: "string", short: "c" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  type: { type: "string" },
  password: { type: "string" },
  listener: { type: "string" },
  idle: { type: "string" },
  "cpu-prof": { type: "string" },
  json: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
  ack: { type: "boolean" },
  replay: { type: "string" },
  redis: { type: "string" },
  ws: { type: "boolean" },
  cluster: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function integer(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError("bench", `--${flag} expects a whole number from ${min} to ${max}, got '${text}'`);
  }
  return n;
}

function integers(flag: string, text: string, min: number, max: number): number[] {
  return text.split(",").map((part) => integer(flag, part, min, max));
}

function seconds(flag: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError("bench", `--${flag} expects seconds from ${min} to ${max}, got '${text}'`);
  }
  return n;
}

function scenariosOf(text: string | undefined): Scenario[] {
  if (text === undefined || text === "all") return [...SCENARIOS];
  return text.split(",").map((s) => {
    if (!(SCENARIOS as readonly string[]).includes(s)) {
      throw new UsageError("bench", `--mode: unknown scenario '${s}'; expected ${SCENARIOS.join(", ")} or all`);
    }
    return s as Scenario;
  });
}

/** Where --connect points: a socket address, or a WebSocket listener's URL. */
function endpointOf(text: string): Endpoint | { url: string } {
  if (/^wss?:\/\//i.test(text)) {
    try {
      return { url: new URL(text).href };
    } catch {
      throw new UsageError("bench", `--connect: '${text}' is not a URL: expected ws://HOST:PORT/PATH`);
    }
  }
  let target;
  try {
    target = parseTarget(text);
  } catch (err) {
    throw new UsageError("bench", `--connect: ${(err as Error).message}`);
  }
  if ("path" in target) return { kind: "unix", path: target.path };
  return { kind: target.host.includes(":") ? "tcp6" : "tcp4", host: target.host, port: target.port };
}

/** The progress line: rewritten in place on a terminal, one line a second otherwise. */
function progressPrinter(quiet: boolean) {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  return {
    show(label: string, p: Progress) {
      if (quiet) return;
      const line =
        `${label}  ${p.elapsedSeconds.toFixed(0).padStart(3)} s  ${p.phase.padEnd(7)}  ` +
        `${p.rate.toLocaleString("en-US").padStart(9)} msgs/s  in flight ${String(p.inFlight).padStart(5)}  ` +
        `max ${p.maxLatencyMs.toFixed(1)} ms`;
      if (tty) {
        process.stderr.write(`\r${line}\x1b[K`);
        shown = true;
      } else process.stderr.write(`${line}\n`);
    },
    note(text: string) {
      if (quiet) return;
      this.clear();
      process.stderr.write(`${text}\n`);
    },
    clear() {
      if (tty && shown) process.stderr.write("\r\x1b[K");
      shown = false;
    },
  };
}

// ---------------------------------------------------------------------------
// bester bench handler SOCKET

async function relayHandlerCommand(runtime: Runtime, socketArg: string | undefined): Promise<number> {
  const socket = socketArg ?? (process.env["BESTER_HANDLER_SOCKET"] || undefined);
  if (socket === undefined) throw new UsageError("bench", "handler: missing the SOCKET path (or set BESTER_HANDLER_SOCKET)");
  const log = (line: string) => console.error(`relay: ${line}`);
  let running;
  try {
    running = await serveHandler({ socket, handle: relayHandle, envelope: false, log });
  } catch (err) {
    console.error(`bester bench handler: ${(err as Error).message}`);
    return 1;
  }
  log(`listening on ${socket}`);
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) runtime.onSignal(sig, () => resolve());
  });
  for (const sig of ["SIGTERM", "SIGINT"] as const) runtime.onSignal(sig, () => runtime.exit(1));
  await running.close();
  return 0;
}

// ---------------------------------------------------------------------------
// bester bench

export async function benchCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs("bench", argv, OPTIONS, 2);
  if (values.help) {
    console.log(BENCH_HELP);
    return 0;
  }
  if (positionals[0] === "handler") return await relayHandlerCommand(runtime, positionals[1]);
  if (positionals.length > 0) throw new UsageError("bench", `unexpected argument '${positionals[0]}'`);

  const scenarios = scenariosOf(values.mode);
  const pairsList = values.pairs === undefined ? [DEFAULTS.pairs] : integers("pairs", values.pairs, 1, 1000);
  const sizes = values.size === undefined ? [DEFAULTS.size] : integers("size", values.size, 0, 512 * 1024);
  const window = values.window === undefined ? DEFAULTS.window : integer("window", values.window, 1, MAX_SESSION_WINDOW);
  const durationS = values.duration === undefined ? DEFAULTS.duration : seconds("duration", values.duration, 0.1, 3600);
  const warmupS = values.warmup === undefined ? DEFAULTS.warmup : seconds("warmup", values.warmup, 0, 600);
  const maxMessages = values.messages === undefined ? Number.MAX_SAFE_INTEGER : integer("messages", values.messages, 1, 1e12);
  const connectTo = values.connect === undefined ? undefined : endpointOf(values.connect);
  const url = connectTo !== undefined && "url" in connectTo ? connectTo.url : undefined;
  const target = connectTo !== undefined && !("url" in connectTo) ? connectTo : undefined;
  if (values.ws && target !== undefined) throw new UsageError("bench", "--ws with --connect needs the WebSocket listener's URL: ws://HOST:PORT/PATH");
  const ws = values.ws === true || url !== undefined;
  const type = values.type ?? DEFAULTS.type;
  const password = values.password ?? (process.env["BESTER_PASSWORD"] || DEFAULTS.password);
  const listener = (ws ? "ws" : (values.listener ?? "tcp4")) as ListenerKind;
  if (!["tcp4", "tcp6", "unix", "ws"].includes(listener) || values.listener === "ws") {
    throw new UsageError("bench", `--listener must be tcp4, tcp6 or unix, got '${values.listener}'`);
  }
  if (values.listener !== undefined && connectTo !== undefined) {
    throw new UsageError("bench", "--listener is for the gateway the bench starts; with --connect the address says it");
  }
  if (values.listener !== undefined && ws) throw new UsageError("bench", "--listener and --ws: the gateway listens on one of them");
  const idle = values.idle === undefined ? undefined : integer("idle", values.idle, 1, 1_000_000);
  const replay = values.replay === undefined ? undefined : integer("replay", values.replay, 1, 1_000_000);
  if (replay !== undefined && idle !== undefined) throw new UsageError("bench", "--replay and --idle are two different measurements: give one");
  let redis: { address: string; port: number; prefix: string } | undefined;
  if (values.redis !== undefined) {
    if (connectTo !== undefined) throw new UsageError("bench", "--redis is for the gateway the bench starts; a gateway given with --connect has its own delivery store");
    let at;
    try {
      at = parseTarget(values.redis);
    } catch (err) {
      throw new UsageError("bench", `--redis: ${(err as Error).message}`);
    }
    if ("path" in at) throw new UsageError("bench", "--redis expects HOST:PORT, not a UNIX socket");
    redis = { address: at.host, port: at.port, prefix: `bester-bench-${randomBytes(4).toString("hex")}:` };
  }
  const tls = tlsFlagsOf("bench", values);
  if (tls !== undefined && (target === undefined || target.kind === "unix")) {
    if (url !== undefined) throw new UsageError("bench", "--tls and --ca are for a TCP address; a wss:// URL speaks TLS by itself (the runtime's CAs)");
    throw new UsageError("bench", "--tls and --ca are for --connect to a TCP address (the gateway the bench starts has no certificate)");
  }
  if (tls !== undefined && idle !== undefined) throw new UsageError("bench", "--tls and --ca are not for --idle");
  if (url !== undefined && url.startsWith("wss:") && idle !== undefined) throw new UsageError("bench", "--idle over wss:// is not measured: its memory is TLS's as much as the gateway's");
  const cpuProfDir = values["cpu-prof"] === undefined ? undefined : resolve(values["cpu-prof"]);
  if (cpuProfDir !== undefined && connectTo !== undefined) {
    throw new UsageError("bench", "--cpu-prof profiles the gateway the bench starts; it cannot profile one given with --connect");
  }
  if (cpuProfDir !== undefined && runtime.selfCommand().length === 1) {
    throw new UsageError("bench", "--cpu-prof needs bester run from source (bun run src/main.ts or deno task), not the compiled binary");
  }
  if (cpuProfDir !== undefined) mkdirSync(cpuProfDir, { recursive: true });
  const clusterNodes = values.cluster === undefined ? undefined : integer("cluster", values.cluster, 2, 8);
  if (clusterNodes !== undefined) {
    if (connectTo !== undefined || idle !== undefined || replay !== undefined || ws || values.ack) {
      throw new UsageError("bench", "--cluster starts its own gateways on TCP: not with --connect, --idle, --replay, --ws or --ack");
    }
    if (values.mode !== undefined && values.mode !== "persistent") throw new UsageError("bench", "--cluster runs the persistent scenario only");
  }

  const progress = progressPrinter(values.quiet === true);
  const report: BenchReport = {
    bester: VERSION,
    runtime: `${runtime.name} ${runtime.version}`,
    machine: machineInfo(),
    settings: runtime.serverSettings(),
    gateway: connectTo === undefined ? { started: true, listener } : { started: false, address: values.connect!, ...(tls ? { tls: true as const } : {}) },
    processes:
      idle !== undefined
        ? connectTo === undefined
          ? `gateway in its own process; the idle clients in this process (${ws ? "the runtime's WebSockets" : "node:net sockets"})`
          : `the idle clients in this process (${ws ? "the runtime's WebSockets" : "node:net sockets"}); the gateway: not started by the bench (RSS n/a)`
        : connectTo === undefined
        ? scenarios.every((sc) => sc === "dummy")
          ? "gateway and load generator each in their own process; the load generator (this process) drives every pair, one event loop"
          : "gateway, relay handler and load generator each in their own process; the load generator (this process) drives every pair, one event loop"
        : "load generator: this process, every pair; the gateway and its handler: not started by the bench (CPU and RSS n/a)",
    acknowledged: values.ack === true,
    runs: [],
  };

  // Ctrl-C: stop the gateway we started before leaving.
  let current: BenchGateway | undefined;
  runtime.onSignal("SIGINT", () => {
    progress.clear();
    void (current?.stop() ?? Promise.resolve()).finally(() => runtime.exit(130));
  });

  if (!values.json) console.log(formatHeader(report));

  if (replay !== undefined) {
    const code = await replayRun(runtime, report, {
      count: replay,
      size: sizes[0]!,
      target,
      url,
      tls,
      type,
      password,
      listener,
      window,
      ack: values.ack === true,
      redis,
      progress,
      setCurrent: (g) => (current = g),
    });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else if (report.replay) console.log(`\n${formatReplay(report.replay)}`);
    return code;
  }

  if (idle !== undefined) {
    const code = await idleRun(runtime, report, { idle, target, url, password, listener, progress });
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else console.log(`\n${formatIdle(report.idle!)}`);
    return code;
  }

  const runId = randomBytes(4).toString("hex");
  let failures = 0;
  /** The Redis of --cluster runs: --redis's, or one the bench starts at the first such run. */
  let clusterRedis: BenchRedis | undefined;
  const stopRedis = () => clusterRedis?.stop() ?? Promise.resolve();
  // Each run on one gateway, then (--cluster) the same run across nodes.
  const topologies = clusterNodes === undefined ? [1] : [1, clusterNodes];
  for (const scenario of clusterNodes === undefined ? scenarios : (["persistent"] as const)) {
    for (const size of sizes) {
      for (const pairs of pairsList) for (const nodes of topologies) {
        const runScenario = nodes === 1 ? scenario : `${scenario}, cluster of ${nodes}`;
        const label = `[${runScenario} ${pairs}x${size}B]`;
        let gateway: BenchGateway | undefined;
        /** The other nodes of a cluster run; the receivers' is the first. */
        let others: BenchGateway[] = [];
        let endpoint = target;
        let wsUrl = url;
        if (connectTo === undefined) {
          try {
            const base = {
              runtime,
              listener,
              handlerMode: scenario === "dummy" ? null : scenario,
              type,
              sessionWindow: Math.max(DEFAULT_SESSION_WINDOW, window),
              maxConnections: Math.max(1000, pairs * 2 + 100),
              ...(cpuProfDir === undefined ? {} : { cpuProfDir }),
              ...(redis === undefined ? {} : { redis }),
            } as const;
            if (nodes === 1) gateway = current = await startBenchGateway(base);
            else {
              clusterRedis ??= redis === undefined ? await startBenchRedis(runtime) : { host: redis.address, port: redis.port, pid: null, stop: async () => {} };
              const at = { address: clusterRedis.host, port: clusterRedis.port, prefix: `bench-${runId}-${report.runs.length}:` };
              const all = await Promise.all(
                Array.from({ length: nodes }, (_, i) => startBenchGateway({ ...base, redis: at, cluster: { node: `bench-node-${i + 1}` } })),
              );
              gateway = current = all[0]!;
              others = all.slice(1);
            }
          } catch (err) {
            progress.clear();
            console.error(`bester bench: ${(err as Error).message}`);
            await stopRedis();
            return 1;
          }
          endpoint = gateway.target;
          wsUrl = gateway.url;
        }
        const receiverNode = others[0];

        const usage: {
          gateway?: ReturnType<typeof startUsage>;
          handler?: ReturnType<typeof startUsage>;
          self?: ReturnType<typeof startUsage>;
          receiverNode?: ReturnType<typeof startUsage>;
          redis?: ReturnType<typeof startUsage>;
        } = {};
        let measureStarted = 0;
        const finished: {
          gateway: ProcessUsage | null;
          handler: ProcessUsage | null;
          self: ProcessUsage | null;
          receiverNode: ProcessUsage | null;
          redis: ProcessUsage | null;
        } = { gateway: null, handler: null, self: null, receiverNode: null, redis: null };
        let result;
        try {
          result = await runLoad(
            besterTransport({
              runtime,
              target: endpoint!,
              ...(receiverNode === undefined ? {} : { receiverTarget: receiverNode.target }),
              ...(wsUrl === undefined ? {} : { url: wsUrl }),
              scenario: scenario === "dummy" ? "dummy" : "relay",
              type,
              password,
              size,
              runId,
              window,
              ...(tls ? { tls } : {}),
              ...(values.ack ? { ack: true } : {}),
            }),
            {
              pairs,
              window,
              warmupMs: warmupS * 1000,
              durationMs: durationS * 1000,
              drainMs: DRAIN_MS,
              maxMessagesPerPair: maxMessages,
              expectReports: scenario !== "dummy",
              onPhase(phase) {
                if (phase === "measure") {
                  measureStarted = performance.now();
                  if (gateway) usage.gateway = startUsage(gateway.pid);
                  if (gateway?.handlerPid != null) usage.handler = startUsage(gateway.handlerPid);
                  usage.self = startUsage(process.pid);
                  if (receiverNode) usage.receiverNode = startUsage(receiverNode.pid);
                  if (receiverNode && clusterRedis?.pid != null) usage.redis = startUsage(clusterRedis.pid);
                } else if (phase === "drain") {
                  const wall = (performance.now() - measureStarted) / 1000;
                  finished.gateway = usage.gateway?.finish(wall) ?? null;
                  finished.handler = usage.handler?.finish(wall) ?? null;
                  finished.self = usage.self?.finish(wall) ?? null;
                  finished.receiverNode = usage.receiverNode?.finish(wall) ?? null;
                  finished.redis = usage.redis?.finish(wall) ?? null;
                }
              },
              onProgress: (p) => progress.show(label, p),
            },
          );
        } catch (err) {
          progress.clear();
          console.error(`bester bench: ${label} ${(err as Error).message}`);
          if (gateway) {
            console.error(`gateway log:\n${gateway.logTail()}`);
            await Promise.all([gateway, ...others].map((g) => g.stop()));
          }
          await stopRedis();
          return 1;
        }
        const died = gateway?.exitStatus();
        if (gateway && died) result.problems.push(`the gateway ended during the run (${died}); its last log lines:\n${gateway.logTail()}`);
        // Peak RSS is read once the run is over, before the processes go away.
        if (gateway && finished.gateway) finished.gateway = { ...finished.gateway, ...peakOf(finished.gateway.pid) };
        if (finished.handler) finished.handler = { ...finished.handler, ...peakOf(finished.handler.pid) };
        if (finished.receiverNode && receiverNode) finished.receiverNode = { ...finished.receiverNode, ...peakOf(receiverNode.pid) };
        const [profiles] = await Promise.all([
          gateway ? gateway.stop() : { gateway: null, handler: null },
          ...others.map((g) => g.stop()),
        ]);
        current = undefined;
        progress.clear();

        const run: RunReport = runReport(
          { scenario: runScenario, size, warmupSeconds: warmupS, durationSeconds: durationS },
          result,
          {
            gateway: finished.gateway,
            handler: scenario === "dummy" ? null : finished.handler,
            loadGenerator: finished.self,
          },
        );
        if (cpuProfDir !== undefined) {
          for (const [who, file] of [["gateway", profiles.gateway], ["handler", profiles.handler]] as const) {
            if (who === "handler" && scenario === "dummy") continue;
            if (file === null) {
              run.problems.push(`no CPU profile of the ${who} was written into ${cpuProfDir}`);
              continue;
            }
            try {
              const summary = summariseProfile(file);
              if (who === "gateway") run.profile = summary;
              else run.handlerProfile = summary;
            } catch (err) {
              run.problems.push(`cannot read the CPU profile ${file}: ${(err as Error).message}`);
            }
          }
        }
        if (nodes > 1) run.cluster = { nodes, receiverGateway: finished.receiverNode, redis: finished.redis };
        report.runs.push(run);
        if (run.lost > 0 || run.duplicated > 0) failures++;
        if (!values.json && !values.quiet) {
          progress.note(
            `${label} ${run.messagesPerSecond.toLocaleString("en-US")} msgs/s, p99 ${run.latencyMs.p99 ?? "-"} ms, lost ${run.lost}, duplicated ${run.duplicated}`,
          );
        }
      }
    }
  }

  await stopRedis();
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(`\n${formatRuns(report.runs)}`);
  if (failures > 0) {
    console.error(`bester bench: ${failures} run${failures === 1 ? "" : "s"} lost or duplicated messages`);
    return 1;
  }
  return 0;
}

/** The gateway a --replay or --idle run starts when --connect names none; undefined, with the reason printed, when it did not start. */
async function startOwnGateway(options: Parameters<typeof startBenchGateway>[0]): Promise<BenchGateway | undefined> {
  try {
    return await startBenchGateway(options);
  } catch (err) {
    console.error(`bester bench: ${(err as Error).message}`);
    return undefined;
  }
}

async function replayRun(
  runtime: Runtime,
  report: BenchReport,
  opts: {
    count: number;
    size: number;
    target: Endpoint | undefined;
    url: string | undefined;
    tls: ReturnType<typeof tlsFlagsOf>;
    type: string;
    password: string;
    listener: ListenerKind;
    window: number;
    ack: boolean;
    redis: { address: string; port: number; prefix: string } | undefined;
    progress: ReturnType<typeof progressPrinter>;
    setCurrent(g: BenchGateway | undefined): void;
  },
): Promise<number> {
  let gateway: BenchGateway | undefined;
  let target = opts.target;
  let url = opts.url;
  if (target === undefined && url === undefined) {
    gateway = await startOwnGateway({
      runtime,
      listener: opts.listener,
      handlerMode: "persistent",
      type: opts.type,
      sessionWindow: Math.max(DEFAULT_SESSION_WINDOW, opts.window),
      maxConnections: 1000,
      // Room for every message, whatever its size (its data and a margin for the envelope).
      inbox: { maxMessages: Math.max(1000, opts.count), maxBytes: Math.max(1024 * 1024, opts.count * (opts.size + 256)) },
      ...(opts.redis === undefined ? {} : { redis: opts.redis }),
    });
    if (gateway === undefined) return 1;
    opts.setCurrent(gateway);
    target = gateway.target;
    url = gateway.url;
  }
  try {
    report.replay = await runReplay(
      {
        runtime,
        target: target!,
        ...(url === undefined ? {} : { url }),
        ...(opts.tls ? { tls: opts.tls } : {}),
        type: opts.type,
        password: opts.password,
        size: opts.size,
        runId: randomBytes(4).toString("hex"),
        ack: opts.ack,
        count: opts.count,
        repeats: REPLAY_ROUNDS,
        window: opts.window,
        timeoutMs: REPLAY_TIMEOUT_MS,
      },
      (i, r) =>
        opts.progress.note(
          `  round ${i + 1}: queued ${opts.count.toLocaleString("en-US")} in ${r.queueMs} ms; replayed: first after ${r.firstMs} ms, last after ${r.lastMs} ms`,
        ),
    );
    return 0;
  } catch (err) {
    opts.progress.clear();
    console.error(`bester bench: --replay: ${(err as Error).message}`);
    if (gateway) console.error(`gateway log:\n${gateway.logTail()}`);
    return 1;
  } finally {
    await gateway?.stop();
    opts.setCurrent(undefined);
  }
}

function peakOf(pid: number): Partial<ProcessUsage> {
  const usage = startUsage(pid).finish(0);
  const out: Partial<ProcessUsage> = {};
  if (usage.peakRssKiB !== null) out.peakRssKiB = usage.peakRssKiB;
  if (usage.rssKiB !== null) out.rssKiB = usage.rssKiB;
  return out;
}

async function idleRun(
  runtime: Runtime,
  report: BenchReport,
  opts: {
    idle: number;
    target: Endpoint | undefined;
    /** --connect's WebSocket URL. */
    url: string | undefined;
    password: string;
    listener: ListenerKind;
    progress: ReturnType<typeof progressPrinter>;
  },
): Promise<number> {
  const { progress } = opts;
  let idle = opts.idle;
  // Every client is a descriptor here and one in the gateway: ask for room in both.
  const wanted = idle + FD_RESERVE;
  const limits: string[] = [];
  const mine = raiseOpenFileLimit(process.pid, wanted);
  if (mine !== null && mine.soft < wanted) limits.push(`the bench process's open-file limit is ${mine.soft}`);
  let gateway: BenchGateway | undefined;
  let theirs: { soft: number } | null = null;
  let target = opts.target;
  let url = opts.url;
  if (target === undefined && url === undefined) {
    gateway = await startOwnGateway({
      runtime,
      listener: opts.listener,
      handlerMode: null,
      type: DEFAULTS.type,
      sessionWindow: DEFAULT_SESSION_WINDOW,
      maxConnections: idle + 100,
    });
    if (gateway === undefined) return 1;
    target = gateway.target;
    url = gateway.url;
    theirs = raiseOpenFileLimit(gateway.pid, wanted);
    if (theirs !== null && theirs.soft < wanted) limits.push(`the gateway's is ${theirs.soft}`);
  }
  let limitedBy: string | undefined;
  if (limits.length > 0) {
    // Both processes need a few descriptors of their own (listeners, pipes, /proc reads).
    const room = Math.min(mine?.soft ?? Infinity, theirs?.soft ?? Infinity) - FD_RESERVE;
    limitedBy =
      `${limits.join(" and ")} and could not be raised (prlimit: raising a hard limit needs root with CAP_SYS_RESOURCE)` +
      (room < idle ? `, so ${room.toLocaleString("en-US")} clients are opened instead of ${idle.toLocaleString("en-US")}` : "");
    if (room < idle) idle = Math.max(1, room);
    progress.note(`bester bench: ${limitedBy}`);
  }
  try {
    report.idle = await runIdle({
      target: target!,
      ...(url === undefined ? {} : { url }),
      count: idle,
      password: opts.password,
      gatewayPid: gateway?.pid ?? null,
      onProgress: (connected, failed) => progress.note(`  ${connected.toLocaleString("en-US")} idle clients logged in, ${failed} failed`),
    });
    if (limitedBy !== undefined) report.idle.limitedBy = limitedBy;
    report.idle.requested = opts.idle;
    const died = gateway?.exitStatus();
    if (gateway && died) report.idle.gatewayExit = `the gateway ended during the test (${died}); its last log lines:\n${gateway.logTail()}`;
  } finally {
    await gateway?.stop();
  }
  return report.idle.connected === idle && report.idle.gatewayExit === undefined ? 0 : 1;
}
