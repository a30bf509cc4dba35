/**
 * A real `redis-server` for a test: loopback, a free port, nothing persisted.
 * `stop()` kills it; start another on the same port to simulate a restart.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createServer, connect } from "node:net";
import type { TestCertificate } from "./tls.ts";

export interface RunningRedis {
  port: number;
  pid: number;
  /** Runs one command with redis-cli (ships with redis-server) and returns its raw output, trimmed. */
  cli(...args: string[]): string;
  /** Output of the server so far, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** A port the kernel just handed out and released, so nothing else holds it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function redisInstalled(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Sends PING; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let reply = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => {
      reply += d;
      // A Redis that wants a password is up too.
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
    });
  });
}

/**
 * Starts redis-server on `port` (a free one if not given) and waits until it
 * answers PING on it; `extraArgs` go to redis-server (a password, a TLS port).
 */
export async function startRedis(port?: number, readyMs = 10000, extraArgs: string[] = []): Promise<RunningRedis> {
  if (!redisInstalled()) {
    throw new Error("redis-server is not installed (the Redis tests run a real one): apt-get install redis-server");
  }
  const chosen = port ?? (await freePort());
  const child = spawn(
    "redis-server",
    ["--port", String(chosen), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning", ...extraArgs],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      resolve();
    }),
  );
  const deadline = Date.now() + readyMs;
  while (!(await ping(chosen))) {
    if (exited) throw new Error(`redis-server on port ${chosen} exited at start:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server on port ${chosen} did not answer PING within ${readyMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    port: chosen,
    pid: child.pid!,
    cli: (...args) =>
      execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(chosen), ...args], { encoding: "utf8" }).trim(),
    output: () => output,
    async stop() {
      if (exited) return;
      child.kill("SIGKILL");
      await exit;
    },
  };
}

/** redis-server arguments for a TLS listener on `port` with `files` (clients need no certificate). */
export function redisTlsArgs(port: number, files: TestCertificate): string[] {
  return [
    "--tls-port", String(port),
    "--tls-cert-file", files.cert,
    "--tls-key-file", files.key,
    "--tls-ca-cert-file", files.ca,
    "--tls-auth-clients", "no",
  ];
}
