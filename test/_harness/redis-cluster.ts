/**
 * A real three-master Redis Cluster for a test: three `redis-server
 * --cluster-enabled yes` on free loopback ports in a temp dir, joined with
 * `redis-cli --cluster create`, no replicas, nothing persisted but each
 * node's cluster config (so a stopped node can be started again and rejoin).
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, startRedis, type RunningRedis } from "./redis.ts";

const run = promisify(execFile);

export interface RunningRedisCluster {
  /** The client ports of the three masters. */
  ports: number[];
  nodes: RunningRedis[];
  /** Runs one command with redis-cli -c (follows MOVED) on the first node and returns its output, trimmed. */
  cli(...args: string[]): string;
  /** Stops node `i` (SIGKILL); `restart(i)` starts it again on the same ports with its cluster config. */
  stopNode(i: number): Promise<void>;
  restartNode(i: number): Promise<void>;
  /** Waits until every node says cluster_state:ok. */
  waitOk(ms?: number): Promise<void>;
  stop(): Promise<void>;
}

async function clusterState(port: number): Promise<string> {
  try {
    const { stdout } = await run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), "cluster", "info"], { encoding: "utf8" });
    return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? "unknown";
  } catch (err) {
    return `no answer (${(err as Error).message.split("\n")[0]})`;
  }
}

export async function startRedisCluster(readyMs = 30000): Promise<RunningRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "bester-redis-cluster-"));
  const ports: number[] = [];
  const busPorts: number[] = [];
  while (ports.length < 3) {
    const p = await freePort();
    const b = await freePort();
    // Two free ports handed out twice in a row would collide; ask again.
    if ([...ports, ...busPorts].includes(p) || [...ports, ...busPorts].includes(b) || p === b) continue;
    ports.push(p);
    busPorts.push(b);
  }
  const argsOf = (i: number) => [
    "--cluster-enabled", "yes",
    // The bus port is its own free port: the default (client port + 10000) may be taken or past 65535.
    "--cluster-port", String(busPorts[i]),
    "--cluster-config-file", join(dir, `nodes-${ports[i]}.conf`),
    "--cluster-node-timeout", "2000",
    "--dir", dir,
  ];
  const nodes: RunningRedis[] = [];
  const stopAll = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startRedis(ports[i], 10000, argsOf(i)));
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"], {
      encoding: "utf8",
    }).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ""}${err.stderr ?? ""}`);
    });
  } catch (err) {
    await stopAll();
    throw err;
  }

  const waitOk = async (ms = readyMs) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const states = await Promise.all(ports.map(clusterState));
      if (states.every((s) => s === "ok")) return;
      if (Date.now() > deadline) {
        throw new Error(`redis cluster on ${ports.join(", ")} not ok within ${ms} ms: ${states.join(", ")}\n${nodes.map((n) => n.output()).join("\n")}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitOk();
  } catch (err) {
    await stopAll();
    throw err;
  }

  return {
    ports,
    nodes,
    cli: (...args) => execFileSync("redis-cli", ["-c", "-h", "127.0.0.1", "-p", String(ports[0]), ...args], { encoding: "utf8" }).trim(),
    stopNode: (i) => nodes[i]!.stop(),
    async restartNode(i) {
      nodes[i] = await startRedis(ports[i], 10000, argsOf(i));
    },
    waitOk,
    stop: stopAll,
  };
}
