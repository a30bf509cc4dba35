/**
 * A gateway for one bench run, in its own process: a generated config
 * (loopback listener on a free port, the relay bench handler in the asked
 * mode, open accounts, no control API), started as `bester serve` by the same
 * runtime and entry point the bench runs on, its JSON log read for the bound
 * address and readiness.
 * @module
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Child, Endpoint, Runtime } from "../runtime/types.ts";
import { childPids, cmdline } from "./proc.ts";

export type ListenerKind = "tcp4" | "tcp6" | "unix" | "ws";
export type HandlerMode = "per-message" | "persistent";

export interface BenchGatewayOptions {
  runtime: Runtime;
  /** The listener the bench connects to. */
  listener: ListenerKind;
  /** The relay handler's connection mode; null: no handler (the dummy scenario). */
  handlerMode: HandlerMode | null;
  /** The message type the relay handler serves. */
  type: string;
  /** limits.sessionWindow: at least the bench's window, so the gateway does not cap it. */
  sessionWindow: number;
  /** limits.maxConnections. */
  maxConnections: number;
  /** Write CPU profiles of the gateway and of the relay handler into this directory (from source only). */
  cpuProfDir?: string;
  /** A node of a cluster (bench --cluster), on the Redis of `redis`, which it needs. */
  cluster?: { node: string };
  /** Keep the delivery store in this Redis (delivery.store "redis") instead of a SQLite file in the run directory. */
  redis?: { address: string; port: number; prefix: string };
  /** delivery.inbox.maxMessages and maxBytes, when a run needs more room than the defaults (--replay). */
  inbox?: { maxMessages: number; maxBytes: number };
}

export interface BenchGateway {
  readonly pid: number;
  readonly target: Endpoint;
  /** The URL its clients dial, for a ws listener. */
  readonly url?: string;
  /** The relay handler's process, once the gateway is ready; null without a handler. */
  readonly handlerPid: number | null;
  /** The gateway's last log lines, for error messages. */
  logTail(): string;
  /** Null while it runs; how it ended once it has (before stop(): it died under the bench). */
  exitStatus(): string | null;
  /** SIGTERM, then SIGKILL after 10 s; removes the run directory. Returns the CPU profiles written, if any. */
  stop(): Promise<{ gateway: string | null; handler: string | null }>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_LINES = 30;

/** The argv that runs this program again, with `extra` flags for the runtime itself (e.g. profiling). */
function selfArgv(runtime: Runtime, runtimeFlags: string[]): string[] {
  const self = runtime.selfCommand();
  if (runtimeFlags.length === 0) return self;
  // Deno: `deno run FLAGS...`; Bun: `bun FLAGS... main.ts`. A compiled binary takes no runtime flags.
  if (runtime.name === "deno") return [self[0]!, self[1]!, ...runtimeFlags, ...self.slice(2)];
  if (self.length > 1) return [self[0]!, ...runtimeFlags, ...self.slice(1)];
  return self;
}

/** Runtime flags that make a process write a CPU profile into `dir` on exit. */
function profileFlags(runtime: Runtime, dir: string | undefined): string[] {
  if (dir === undefined) return [];
  return runtime.name === "bun" ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [`--cpu-prof-dir=${dir}`];
}

/** The config file the bench gateway runs on. */
export function benchConfig(dir: string, opts: BenchGatewayOptions): object {
  const self = selfArgv(opts.runtime, profileFlags(opts.runtime, opts.cpuProfDir));
  const network =
    opts.listener === "unix"
      ? { types: ["unix"], unix: { address: join(dir, "bester.sock") } }
      : { types: [opts.listener], [opts.listener]: { address: opts.listener === "tcp6" ? "::1" : "127.0.0.1", port: 0 } };
  const handlers =
    opts.handlerMode === null
      ? { availableTypes: [], typeMap: {} }
      : {
          availableTypes: [opts.type],
          typeMap: {
            [opts.type]: {
              // This same program, as `bester bench handler SOCKET`: works from source and from the binary.
              handlerBinary: self[0],
              handlerArgs: [...self.slice(1), "bench", "handler"],
              unixDomainSocketPath: join(dir, "relay.sock"),
              mode: opts.handlerMode,
              connections: 1,
            },
          },
        };
  const c = opts.cluster;
  return {
    network,
    handlers,
    database: { type: "open" },
    control: { enabled: false },
    informer: { enabled: false },
    ...(c === undefined ? {} : { cluster: { enabled: true, node: c.node } }),
    limits: { sessionWindow: opts.sessionWindow, maxConnections: opts.maxConnections },
    delivery: {
      ...(opts.redis === undefined ? {} : { store: "redis", redis: opts.redis }),
      ...(opts.inbox === undefined ? {} : { inbox: opts.inbox }),
    },
    log: { level: "info", format: "json" },
  };
}

export async function startBenchGateway(opts: BenchGatewayOptions): Promise<BenchGateway> {
  const { runtime } = opts;
  const dir = mkdtempSync(join(tmpdir(), "bester-bench-"));
  const configPath = join(dir, "server.conf");
  writeFileSync(configPath, JSON.stringify(benchConfig(dir, opts), null, 2));

  const argv = [...selfArgv(runtime, profileFlags(runtime, opts.cpuProfDir)), "serve", "--config", configPath];

  const lines: string[] = [];
  const records: Array<Record<string, unknown>> = [];
  let wake: (() => void) | undefined;
  const child: Child = runtime.spawn(argv, {
    cwd: dir,
    onOutput(_stream, line) {
      lines.push(line);
      if (lines.length > 500) lines.splice(0, lines.length - LOG_TAIL_LINES);
      if (line.startsWith("{")) {
        try {
          records.push(JSON.parse(line));
        } catch {
          // not a log record
        }
      }
      wake?.();
    },
  });
  let exited = false;
  let exitStatus: string | null = null;
  void child.exited.then((e) => {
    exited = true;
    exitStatus = e.signal !== null ? `killed by ${e.signal}` : `exit code ${e.code}`;
    wake?.();
  });
  const logTail = () => lines.slice(-LOG_TAIL_LINES).join("\n");

  const stopChild = async (): Promise<void> => {
    if (!exited) child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([
      child.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (!gone) {
      child.kill("SIGKILL");
      await child.exited;
    }
  };

  // Ready: the gateway logs "ready" after its listeners are bound and its handler is up.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!records.some((r) => r["msg"] === "ready")) {
    if (exited || Date.now() > deadline) {
      await stopChild();
      rmSync(dir, { recursive: true, force: true });
      const why = exited ? "exited during start-up" : `was not ready within ${READY_TIMEOUT_MS} ms`;
      throw new Error(`the bench gateway ${why}:\n${logTail()}`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 100);
      wake = () => (clearTimeout(t), resolve());
    });
    wake = undefined;
  }

  const listening = records.find((r) => r["msg"] === "listening" && r["listener"] === opts.listener);
  const address = String(listening?.["address"] ?? "");
  let target: Endpoint;
  if (address.startsWith("unix:")) target = { kind: "unix", path: address.slice(5) };
  else {
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
    if (!m) {
      await stopChild();
      throw new Error(`the bench gateway did not log its ${opts.listener} address:\n${logTail()}`);
    }
    target = { kind: opts.listener === "tcp6" ? "tcp6" : "tcp4", host: m[1]!, port: Number(m[2]) };
  }

  const handlerPid =
    opts.handlerMode === null
      ? null
      : (childPids(child.pid).find((pid) => {
          const argv = cmdline(pid) ?? [];
          return argv.includes("bench") && argv.includes("handler");
        }) ?? null);

  const url = typeof listening?.["url"] === "string" ? listening["url"] : undefined;
  return {
    pid: child.pid,
    target,
    ...(url === undefined ? {} : { url }),
    handlerPid,
    logTail,
    exitStatus: () => exitStatus,
    async stop() {
      await stopChild();
      // The runtime names each file itself (CPU.<time>.<pid>...cpuprofile): find each process's.
      const profileOf = (pid: number | null): string | null => {
        if (opts.cpuProfDir === undefined || pid === null) return null;
        const pattern = new RegExp(`\\.${pid}\\..*cpuprofile$`);
        const files = readdirSync(opts.cpuProfDir).filter((f) => pattern.test(f)).sort();
        return files.length > 0 ? join(opts.cpuProfDir, files.at(-1)!) : null;
      };
      rmSync(dir, { recursive: true, force: true });
      return { gateway: profileOf(child.pid), handler: profileOf(handlerPid) };
    },
  };
}
