/**
 * The handler SDK: write a Bester message handler (PROTOCOL.md §4) as one
 * function from a request to an answer.
 *
 * The gateway connects to the handler's UNIX socket and writes framed JSON
 * requests; the handler answers each with one frame, in the order received.
 * {@link serveHandler} does exactly that on any number of connections, so one
 * handler serves both the original one-message-per-connection mode and the
 * persistent, pipelined mode, even when `handle` is async and a later request
 * finishes first.
 *
 * On Bun it serves through the gateway's own runtime adapter (Bun's native
 * sockets); on Deno and Node through `node:net`, so a handler written with it
 * runs on Bun, Deno and Node alike.
 *
 * @example A complete handler program (`bun run my-handler.ts SOCKET`)
 * ```ts
 * import { runHandlerMain, sendClients, fail } from "bester/sdk/handler";
 *
 * runHandlerMain(({ data, meta }) => {
 *   if (meta === undefined) return fail('configure this handler with "envelope": true');
 *   return sendClients([meta.from], { echoed: data });
 * });
 * ```
 *
 * @module
 */
import { lstat, unlink } from "node:fs/promises";
import { basename } from "node:path";
import process from "node:process";
import { frameJson } from "../protocol/frame.ts";
import { ListenError } from "../runtime/types.ts";
import { claimUnixPath } from "../runtime/unix-path.ts";
import { fail, type HandlerAnswer, isAnswer } from "./answers.ts";
import { HandlerStartError } from "./errors.ts";
import { listenNode } from "./node-transport.ts";
import { type EnvelopeMode, type HandlerRequest, requestOf } from "./requests.ts";
import type { HandlerTransport, Service } from "./served.ts";
import { REPEATED_SIGNAL_MS } from "./stop-requests.ts";

export { fail, type HandlerAnswer, type HandlerCommand, sendClients, sendHandler, sendServers } from "./answers.ts";
export { HandlerStartError } from "./errors.ts";
export type { EnvelopeMode, HandlerMeta, HandlerRequest } from "./requests.ts";
export { REPEATED_SIGNAL_MS } from "./stop-requests.ts";

/**
 * The handler function: may be sync or async; a throw becomes a {@link fail} answer.
 *
 * @example
 * ```ts
 * const handle: HandleFunction = async ({ data }) => sendClients(["bob"], await lookUp(data));
 * ```
 */
export type HandleFunction = (request: HandlerRequest) => HandlerAnswer | Promise<HandlerAnswer>;

/**
 * Options of {@link serveHandler}.
 *
 * @example
 * ```ts
 * const options: ServeHandlerOptions = { socket: "/tmp/h.sock", handle: ({ data }) => sendClients(["bob"], data), log: console.error };
 * ```
 */
export interface ServeHandlerOptions {
  /** Path of the UNIX socket to create. A stale socket file (nobody answers on it) is replaced. */
  socket: string;
  handle: HandleFunction;
  /** Default `"auto"`; see {@link EnvelopeMode}. */
  envelope?: EnvelopeMode;
  /** Receives one line per notable event (bad frames, throws). Default: silent. */
  log?: (line: string) => void;
  /**
   * Largest request frame accepted; a larger one closes that connection.
   * Default {@link DEFAULT_HANDLER_MAX_FRAME_BYTES}.
   */
  maxFrameBytes?: number;
  /**
   * Which sockets serve. `"auto"` (default): the runtime adapter's on Bun
   * (the gateway's own, cheaper per request than node:net's streams there),
   * node:net on Deno and Node (Deno's adapter is node:net as well, under the
   * gateway's framed connections, which cost no less for small or
   * per-message requests).
   * `"runtime"`: the adapter's on Bun and Deno. `"node:net"`: always node:net.
   */
  sockets?: "auto" | "runtime" | "node:net";
}

/**
 * A handler that is listening.
 *
 * @example
 * ```ts
 * const running: RunningHandler = await serveHandler({ socket: "/tmp/h.sock", handle });
 * console.log(running.socketPath);
 * await running.close();
 * ```
 */
export interface RunningHandler {
  /** The socket path it listens on. */
  readonly socketPath: string;
  /**
   * Stops accepting, lets open connections receive the answers already being
   * worked on (for up to {@link CLOSE_GRACE_MS}), then removes the socket file.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/**
 * The default request size limit. Larger than the gateway's default client
 * frame limit (1 MiB) because an envelope and `sendHandler` chains add to the
 * client's data; the handler trusts its gateway, so this only guards against a
 * corrupt length.
 *
 * @example
 * ```ts
 * await serveHandler({ socket: "/tmp/h.sock", handle, maxFrameBytes: 4 * DEFAULT_HANDLER_MAX_FRAME_BYTES });
 * ```
 */
export const DEFAULT_HANDLER_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * How long `close()` lets in-flight answers finish before cutting connections.
 *
 * @example
 * ```ts
 * // A handle function that may take longer than this should not rely on finishing at shutdown.
 * const budgetMs = CLOSE_GRACE_MS / 2;
 * ```
 */
export const CLOSE_GRACE_MS = 2000;

/**
 * Listens on a UNIX socket and answers every request frame with `handle`'s
 * answer, per connection in the order the requests arrived.
 *
 * - `handle` throws or rejects: the answer is `fail(err.message, "handler_error")`
 *   and the handler keeps serving.
 * - `handle` returns something that is not an answer, or data JSON cannot carry:
 *   a `fail(..., "handler_error")` answer, logged.
 * - A frame that is not valid (too large, not UTF-8, not JSON): that connection
 *   is closed; others are unaffected.
 *
 * @param options where to listen and what to do; see {@link ServeHandlerOptions}
 * @returns once the socket accepts connections
 * @throws {HandlerStartError} when the path is a live socket or not a socket
 * @example
 * ```ts
 * import { serveHandler, sendClients } from "bester/sdk/handler";
 *
 * const running = await serveHandler({
 *   socket: "/tmp/upper.sock",
 *   envelope: true,
 *   handle: ({ data, meta }) => sendClients([meta!.from], String(data).toUpperCase()),
 * });
 * // ... later
 * await running.close();
 * ```
 */
export async function serveHandler(options: ServeHandlerOptions): Promise<RunningHandler> {
  const { socket: socketPath, handle } = options;
  const mode = options.envelope ?? "auto";
  const log = options.log ?? (() => {});

  const encodeAnswer = (answer: unknown): string => {
    if (!isAnswer(answer)) {
      log(`handle returned ${answer === undefined ? "nothing" : "a value that is not an answer"}; answering with a failure`);
      answer = fail("the handler returned no answer (use sendClients, sendHandler, sendServers or fail)", "handler_error");
    }
    try {
      return frameJson(answer);
    } catch (err) {
      log(`answer is not JSON-serialisable: ${messageOf(err)}`);
      return frameJson(fail(`the handler's answer is not JSON-serialisable: ${messageOf(err)}`, "handler_error"));
    }
  };
  const threw = (err: unknown): string => {
    log(`handle threw: ${err instanceof Error && err.stack ? err.stack : messageOf(err)}`);
    return frameJson(fail(messageOf(err), "handler_error"));
  };

  const service: Service = {
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_HANDLER_MAX_FRAME_BYTES,
    log,
    closing: false,
    served: new Set(),
    /**
     * Calls `done` with the encoded answer: at once when `handle` answers
     * synchronously (no promise per request on the hot path), else when it settles.
     */
    answerFor(value, done) {
      const request = requestOf(value, mode);
      if (isAnswer(request)) return done(encodeAnswer(request));
      let result: unknown;
      try {
        result = handle(request);
      } catch (err) {
        return done(threw(err));
      }
      if (result !== null && typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        Promise.resolve(result).then(
          (answer) => done(encodeAnswer(answer)),
          (err) => done(threw(err)),
        );
      } else {
        done(encodeAnswer(result));
      }
    },
  };

  try {
    await claimUnixPath(socketPath);
  } catch (err) {
    const code = err instanceof ListenError && (err.code === "in_use" || err.code === "not_socket") ? err.code : "listen_failed";
    throw new HandlerStartError(code, messageOf(err), { cause: err });
  }
  const listen = await transportFor(options.sockets ?? "auto");
  const stopListening = await listen(socketPath, service);
  // Remembered so close() never removes a socket another process created at the same path since.
  const inode = (await lstat(socketPath)).ino;

  const close = async () => {
    service.closing = true;
    const listenerClosed = stopListening();
    const open = [...service.served];
    for (const served of open) served.end();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS)));
    await Promise.race([Promise.all(open.map((s) => s.whenClosed())), timedOut]);
    clearTimeout(timer);
    for (const served of service.served) served.wire.destroy();
    await listenerClosed;
    try {
      const now = await lstat(socketPath);
      if (now.isSocket() && now.ino === inode) await unlink(socketPath);
    } catch {
      // already removed by the runtime's close
    }
  };

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    close: () => (closing ??= close()),
  };
}

/** The sockets `wanted` names, falling back to node:net where the runtime has no adapter. See ServeHandlerOptions.sockets. */
async function transportFor(wanted: "auto" | "runtime" | "node:net"): Promise<HandlerTransport> {
  if (wanted === "node:net") return listenNode;
  const { currentRuntime, listenOnRuntime } = await import("./runtime-transport.ts");
  const runtime = await currentRuntime();
  if (runtime === undefined || (wanted === "auto" && runtime.name !== "bun")) return listenNode;
  return (socketPath, service) => listenOnRuntime(runtime, socketPath, service);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------
// Program entry

/**
 * Options of {@link runHandlerMain}.
 *
 * @example
 * ```ts
 * await runHandlerMain(handle, { envelope: true, log: () => {} });
 * ```
 */
export interface RunHandlerMainOptions extends Omit<ServeHandlerOptions, "handle" | "socket" | "log"> {
  /** Default: `BESTER_HANDLER_SOCKET`, else the first command-line argument. */
  socket?: string;
  /** Default: one line per event on stderr. */
  log?: (line: string) => void;
}

/**
 * Runs a handler as a program, the way the gateway starts one
 * (`PROGRAM [args...] SOCKET [INFORMER]`, with `BESTER_HANDLER_SOCKET` set):
 * takes the socket path from `options.socket`, else `BESTER_HANDLER_SOCKET`,
 * else `process.argv[2]`; serves; on SIGTERM or SIGINT closes, removes the
 * socket file and exits 0 (a second signal, more than 500 ms later, exits 1 at once). If it cannot
 * start it prints why on stderr and exits 1 (2 when no socket path is given).
 *
 * @param handle the handler function
 * @param options as for {@link serveHandler}, all optional
 * @returns the running handler, once it accepts connections
 * @example A whole handler file, run as `deno run -A reverse.ts /tmp/reverse.sock`
 * ```ts
 * import { fail, runHandlerMain, sendClients, type HandlerRequest } from "bester/sdk/handler";
 *
 * export const handle = ({ data, meta }: HandlerRequest) =>
 *   meta && typeof data === "string"
 *     ? sendClients([meta.from], [...data].reverse().join(""))
 *     : fail("send a string, with \"envelope\": true");
 *
 * if (import.meta.main) await runHandlerMain(handle);
 * ```
 */
export async function runHandlerMain(handle: HandleFunction, options: RunHandlerMainOptions = {}): Promise<RunningHandler> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const program = process.env["BESTER_HANDLER_TYPE"] || basename(process.argv[1] ?? "handler");
  const socket = options.socket ?? (process.env["BESTER_HANDLER_SOCKET"] || process.argv[2]);
  if (!socket) {
    log(`${program}: no socket path: give it as the first argument or set BESTER_HANDLER_SOCKET`);
    process.exit(2);
  }
  // Listening for stop signals before the socket exists: a gateway counts the
  // handler up once its socket file appears, and may stop it right then.
  let running: RunningHandler | undefined;
  let stoppingSince: number | undefined;
  const close = (r: RunningHandler) =>
    r.close().then(
      () => process.exit(0),
      (err) => {
        log(`${program}: close failed: ${messageOf(err)}`);
        process.exit(1);
      },
    );
  const onSignal = (signal: NodeJS.Signals) => {
    // Ctrl-C in a terminal reaches the handler twice: SIGINT from the terminal,
    // then SIGTERM from the gateway stopping it. That is one request.
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < REPEATED_SIGNAL_MS) return;
      process.exit(1);
    }
    stoppingSince = Date.now();
    log(`${program}: ${signal}: closing ${socket}`);
    if (running) void close(running); // else: closed as soon as it is serving
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    running = await serveHandler({ ...options, socket, handle, log });
  } catch (err) {
    log(`${program}: ${messageOf(err)}`);
    process.exit(1);
  }
  if (stoppingSince !== undefined) void close(running);
  log(`${program}: listening on ${socket}`);
  return running;
}
