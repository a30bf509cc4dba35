/**
 * What `bench --cluster N` starts besides the gateways: a local redis-server
 * of its own (loopback, a free port, nothing persisted), unless one is
 * given; the gateways then join one cluster on it (bench/gateway.ts).
 * @module
 */
import { createServer } from "node:net";
import type { Child, Runtime } from "../runtime/types.ts";

export interface BenchRedis {
  host: string;
  port: number;
  /** The server's process when the bench started it; null for one given with --redis. */
  readonly pid: number | null;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/** A port the kernel just handed out and released. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` from PATH on a free loopback port and waits until it says it is ready. */
export async function startBenchRedis(runtime: Runtime): Promise<BenchRedis> {
  const port = await freePort();
  const lines: string[] = [];
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  let child: Child;
  try {
    child = runtime.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      onOutput(_stream, line) {
        lines.push(line);
        if (line.includes("Ready to accept connections")) ready();
      },
    });
  } catch (err) {
    throw new Error(`--cluster needs redis-server on PATH (or --redis HOST:PORT): ${(err as Error).message}`);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    isReady.then(() => "ready" as const),
    child.exited.then(() => "exited" as const),
    new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`redis-server on port ${port} ${outcome === "exited" ? "exited at start" : `was not ready within ${READY_TIMEOUT_MS} ms`}:\n${lines.slice(-10).join("\n")}`);
  }
  return {
    host: "127.0.0.1",
    port,
    pid: child.pid,
    async stop() {
      child.kill("SIGKILL");
      await child.exited;
    },
  };
}
