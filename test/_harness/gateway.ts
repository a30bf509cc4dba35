/**
 * Starts a real gateway process for a test: a temp directory, a config with
 * port 0 everywhere (the gateway reports the ports it got), JSON logs parsed
 * from stderr, and the whole log attached to any failure.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { childPids } from "../../src/bench/proc.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RUNTIMES, type RuntimeName } from "./runtimes.ts";
import type { Target } from "./wire.ts";

export interface RunningGateway {
  dir: string;
  configPath: string;
  tcp4: Target;
  tcp6: Target;
  unix: Target;
  /** Base URL of the control API when the config enables it (e.g. http://127.0.0.1:40123). */
  control: string | undefined;
  /** The WebSocket listener's URL when the config has one (ws://127.0.0.1:40124/bester). */
  ws: string | undefined;
  /** The web chat page's URL when the config has a WebSocket listener (http://127.0.0.1:40124/chat). */
  chat: string | undefined;
  logs: string[];
  child: ChildProcess;
  /** Parsed JSON log records so far. */
  records(): any[];
  /** Waits for a log record matching `pred`. */
  waitForLog(pred: (r: any) => boolean, ms?: number): Promise<any>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /**
   * Kills the gateway with SIGKILL and waits for it to go; its folder stays.
   * The handler processes it leaves running are stopped (SIGTERM): the test started them.
   */
  kill9(): Promise<void>;
  exited: Promise<number | null>;
}

type Json = { [k: string]: any };

export function deepMerge(base: Json, patch: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    out[k] = v && typeof v === "object" && !Array.isArray(v) && base[k] && typeof base[k] === "object" ? deepMerge(base[k], v) : v;
  }
  return out;
}

/** Every folder tempDir made and not yet removed. */
const madeDirs: string[] = [];

/**
 * Removes every folder tempDir made, whatever each test did with it: each
 * test file calls it in afterAll (bun test emits no process "exit" to hang
 * it on).
 */
export function removeTempDirs(): void {
  for (const dir of madeDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function tempDir(prefix = "bester-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

export function baseConfig(dir: string): Json {
  return {
    network: {
      types: ["tcp4", "tcp6", "unix"],
      tcp4: { address: "127.0.0.1", port: 0 },
      tcp6: { address: "::1", port: 0 },
      unix: { address: join(dir, "gateway.sock") },
    },
    control: { enabled: false },
    informer: { enabled: false },
    log: { level: "debug", format: "json" },
  };
}

export interface CliOutcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the bester CLI under `runtime` with a raw argv tail and collects its
 * output; `input`, if given, is written to its stdin (else stdin is closed);
 * `env` is its whole environment (default: this process's).
 */
export function runCli(
  runtime: RuntimeName,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
) {
  const timeoutMs = options.timeoutMs ?? 20000;
  return new Promise<CliOutcome>((resolve, reject) => {
    const [cmd, ...pre] = RUNTIMES[runtime];
    const child = spawn(cmd!, [...pre, ...args], { stdio: ["pipe", "pipe", "pipe"], env: options.env });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bester ${args.join(" ")} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    // "close" (not "exit") waits until the pipes are drained.
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(options.input ?? "");
  });
}

export interface StartOptions {
  readyMs?: number;
  /** The gateway's whole environment; default (undefined): this process's, as spawn does. */
  env?: NodeJS.ProcessEnv;
  /** Leave the folder when the gateway stops (another gateway uses it too); tempDir's sweep removes it. */
  keepDir?: boolean;
  /** Started under this umask (octal text, e.g. "000"), through sh; default: this process's. */
  umask?: string;
}

export async function startGateway(runtime: RuntimeName, patch: Json = {}, options: StartOptions = {}): Promise<RunningGateway> {
  const dir = tempDir();
  const configPath = join(dir, "server.conf");
  writeFileSync(configPath, JSON.stringify(deepMerge(baseConfig(dir), patch), null, 2));
  return launchGateway(runtime, configPath, dir, options);
}

/**
 * Runs `bester serve --config configPath` in `dir` and waits for it to be
 * ready; `stop` removes `dir`. For a config file the test wrote itself.
 */
export async function launchGateway(runtime: RuntimeName, configPath: string, dir: string, options: StartOptions = {}): Promise<RunningGateway> {
  const readyMs = options.readyMs ?? 30000;
  // Logs as JSON records at every level, whatever the file says, so tests can wait for them.
  const argv = [...RUNTIMES[runtime], "serve", "--config", configPath, "--log-format", "json", "--log-level", "debug"];
  // exec keeps the pid: the child is the gateway itself, whose /proc entry tests may read.
  if (options.umask !== undefined) argv.unshift("/bin/sh", "-c", `umask ${options.umask} && exec "$@"`, "sh");
  const [cmd, ...rest] = argv;
  const child = spawn(cmd!, rest, {
    cwd: dir,
    env: options.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const parsed: any[] = [];
  const listeners: Array<() => void> = [];
  let partial = "";
  const onText = (text: string) => {
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      logs.push(line);
      try {
        parsed.push(JSON.parse(line));
      } catch {
        // not a log record (e.g. a runtime warning)
      }
    }
    listeners.splice(0).forEach((l) => l());
  };
  child.stderr!.on("data", (d) => onText(String(d)));
  child.stdout!.on("data", (d) => onText(String(d)));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let hasExited = false;
  exited.then(() => {
    hasExited = true;
    listeners.splice(0).forEach((l) => l());
  });

  const waitForLog = async (pred: (r: any) => boolean, ms = 10000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = parsed.find(pred);
      if (hit) return hit;
      if (hasExited) throw new Error(`gateway exited before the expected log line\n${logs.join("\n")}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected log line not seen within ${ms} ms\n${logs.join("\n")}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        listeners.push(() => (clearTimeout(t), resolve()));
      });
    }
  };

  try {
    await waitForLog((r) => r.msg === "ready", readyMs);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const addressOf = (kind: string): Target => {
    const rec = parsed.find((r) => r.msg === "listening" && r.listener === kind);
    if (!rec) return { path: "" };
    const a: string = rec.address;
    if (a.startsWith("unix:")) return { path: a.slice(5) };
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(a)!;
    return { host: m[1]!, port: Number(m[2]) };
  };
  return {
    dir,
    configPath,
    tcp4: addressOf("tcp4"),
    tcp6: addressOf("tcp6"),
    unix: addressOf("unix"),
    control: parsed.find((r) => r.msg === "control API listening")?.address,
    ws: parsed.find((r) => r.msg === "listening" && r.listener === "ws")?.url,
    chat: parsed.find((r) => r.msg === "listening" && r.listener === "ws")?.chat,
    logs,
    child,
    records: () => parsed,
    waitForLog,
    exited,
    async kill9() {
      const handlers = child.pid === undefined ? [] : childPids(child.pid);
      child.kill("SIGKILL");
      await exited;
      for (const pid of handlers) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // gone already
        }
      }
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!hasExited) child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
      const code = await exited;
      clearTimeout(timer);
      if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
