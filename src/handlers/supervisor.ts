/**
 * Starts one handler program, restarts it with backoff when it exits, and
 * stops it on shutdown. The handler counts as up once its socket exists.
 * @module
 */
import { lstat } from "node:fs/promises";
import type { Logger } from "../log/logger.ts";
import type { Child, Runtime } from "../runtime/types.ts";
import { claimUnixPath, releaseUnixPath } from "../runtime/unix-path.ts";

/** First restart delay; doubles per quick crash so a broken handler cannot spin the CPU. */
export const RESTART_BACKOFF_MIN_MS = 100;
/** Restart delay ceiling: a handler fixed on disk is picked up within this. */
export const RESTART_BACKOFF_MAX_MS = 10_000;
/** A handler that ran this long before exiting is restarted at the minimum delay again. */
export const RESTART_STABLE_MS = 10_000;
/** A handler that has not bound its socket by then is killed and restarted. */
export const HANDLER_START_TIMEOUT_MS = 15_000;
/** How long a handler gets to exit after SIGTERM before SIGKILL. */
export const HANDLER_STOP_TIMEOUT_MS = 3_000;
/**
 * Poll interval while waiting for a starting handler's socket. Short: the
 * gateway's start waits on it, and a poll costs one lstat.
 */
const SOCKET_POLL_MS = 5;

export type HandlerState = "starting" | "up" | "backoff" | "stopped";

export interface SupervisorOptions {
  runtime: Runtime;
  type: string;
  argv: string[];
  env: Record<string, string>;
  cwd?: string;
  socketPath: string;
  log: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSocket();
  } catch {
    return false;
  }
}

export class Supervisor {
  state: HandlerState = "starting";
  pid: number | undefined;
  restarts = 0;
  lastError: string | undefined;
  #child: Child | undefined;
  #stopped = false;
  #wakeSleep: (() => void) | undefined;
  #upWaiters: Array<(up: boolean) => void> = [];
  #loop: Promise<void> | undefined;

  constructor(private readonly opts: SupervisorOptions) {}

  start(): void {
    this.#loop ??= this.#run();
  }

  /**
   * Resolves true once the handler is up; false if `ms` passes first or the
   * current attempt ends without it coming up (a handler that crashes at
   * start-up must not hold the gateway's start for the whole timeout).
   */
  waitUp(ms: number): Promise<boolean> {
    if (this.state === "up") return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      this.#upWaiters.push((up) => {
        clearTimeout(timer);
        resolve(up);
      });
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wakeSleep?.();
    this.#upWaiters.splice(0).forEach((w) => w(false));
    const child = this.#child;
    if (child) {
      child.kill("SIGTERM");
      const gone = await Promise.race([child.exited.then(() => true), sleep(HANDLER_STOP_TIMEOUT_MS).then(() => false)]);
      if (!gone) {
        this.opts.log.warn("handler ignored SIGTERM; killing it", { pid: child.pid });
        child.kill("SIGKILL");
        await child.exited;
      }
    }
    await this.#loop;
    await releaseUnixPath(this.opts.socketPath);
    this.state = "stopped";
  }

  async #run(): Promise<void> {
    const { log } = this.opts;
    let delay = RESTART_BACKOFF_MIN_MS;
    while (!this.#stopped) {
      const startedAt = Date.now();
      await this.#runOnce();
      if (this.#stopped) break;
      this.state = "backoff";
      if (Date.now() - startedAt >= RESTART_STABLE_MS) delay = RESTART_BACKOFF_MIN_MS;
      log.warn("handler will be restarted", { in_ms: delay, reason: this.lastError });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wakeSleep = () => (clearTimeout(t), resolve());
      });
      this.#wakeSleep = undefined;
      delay = Math.min(delay * 2, RESTART_BACKOFF_MAX_MS);
      this.restarts++;
    }
    this.state = "stopped";
  }

  async #runOnce(): Promise<void> {
    const { runtime, argv, env, cwd, socketPath, log } = this.opts;
    this.state = "starting";
    try {
      // A socket left by a crashed run would look "up" before the new process binds.
      await claimUnixPath(socketPath);
    } catch (err) {
      this.lastError = `cannot use socket ${socketPath}: ${(err as Error).message}`;
      log.error("handler not started", { error: this.lastError });
      this.#upWaiters.splice(0).forEach((w) => w(false));
      return;
    }
    let child: Child;
    try {
      child = runtime.spawn(argv, {
        cwd,
        env,
        onOutput: (stream, line) => log.info(line, { stream }),
      });
    } catch (err) {
      this.lastError = `cannot start ${argv[0]}: ${(err as Error).message}`;
      log.error("handler not started", { error: this.lastError });
      this.#upWaiters.splice(0).forEach((w) => w(false));
      return;
    }
    this.#child = child;
    this.pid = child.pid;
    log.info("handler started", { pid: child.pid, argv: argv.join(" ") });
    let exited = false;
    const exit = child.exited.then((e) => {
      exited = true;
      return e;
    });
    const deadline = Date.now() + HANDLER_START_TIMEOUT_MS;
    while (!exited && !this.#stopped && !(await isSocket(socketPath))) {
      if (Date.now() > deadline) {
        this.lastError = `did not create its socket ${socketPath} within ${HANDLER_START_TIMEOUT_MS} ms`;
        log.error("handler start timed out; killing it", { pid: child.pid });
        child.kill("SIGKILL");
        break;
      }
      await sleep(SOCKET_POLL_MS);
    }
    const up = !exited && !this.#stopped && (await isSocket(socketPath));
    if (up) {
      this.state = "up";
      this.lastError = undefined;
      log.info("handler up", { pid: child.pid, socket: socketPath });
      this.#upWaiters.splice(0).forEach((w) => w(true));
    }
    const { code, signal } = await exit;
    if (!up) this.#upWaiters.splice(0).forEach((w) => w(false));
    this.#child = undefined;
    this.pid = undefined;
    if (this.#stopped) {
      log.info("handler stopped", { code, signal });
      return;
    }
    this.lastError = signal ? `exited on signal ${signal}` : `exited with code ${code}`;
    log.warn("handler exited", { code, signal });
  }
}
