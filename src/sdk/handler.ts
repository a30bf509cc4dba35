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
import { connect, createServer, type Server, type Socket } from "node:net";
import { basename } from "node:path";
import process from "node:process";
import { FrameDecoder, frameJson } from "../protocol/frame.ts";
import { OutBuffer } from "../protocol/out-buffer.ts";
import { loadRuntime } from "../runtime/index.ts";
import { type Conn, type Listener, ListenError, type Runtime, type SocketEvents } from "../runtime/types.ts";
import { bindWithMode } from "../runtime/unix-mode.ts";
import type { ErrorInfo } from "../protocol/reports.ts";

/**
 * Where a request came from, present when the gateway sends envelopes
 * (`"envelope": true` in the handler's config).
 *
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data, meta }) =>
 *   meta ? sendClients([meta.from], { seenBy: meta.via, data }) : fail("needs an envelope");
 * ```
 */
export interface HandlerMeta {
  /** The original sender's username (or the peer server, for server-scope messages). */
  from: string;
  /** "client" or "server": how the original message entered the gateway. */
  scope: string;
  /** The originator's message id. */
  id: string;
  /** The handler type this request is addressed to: the message's type, or the `sendHandler` target. */
  type: string;
  /** Handler types this message already passed through by `sendHandler`, oldest first. */
  via: string[];
}

/**
 * One request from the gateway.
 *
 * @example
 * ```ts
 * const handle: HandleFunction = (request: HandlerRequest) => sendClients(["ops"], request.data);
 * ```
 */
export interface HandlerRequest {
  /** The client's `payload.data`: any JSON value. */
  data: unknown;
  /** Set only for envelope requests; see {@link ServeHandlerOptions.envelope}. */
  meta?: HandlerMeta;
}

/**
 * The command of a successful answer: where the gateway sends the answer's data.
 *
 * @example
 * ```ts
 * const command: HandlerCommand = sendHandler("chat", null).header.command!; // { type: "sendHandler", data: "chat" }
 * ```
 */
export type HandlerCommand =
  | { type: "sendClients"; data: string[] }
  | { type: "sendHandler"; data: string }
  | { type: "sendServers"; data: string[] };

/**
 * A handler's answer, exactly as it goes on the wire. Build it with
 * {@link sendClients}, {@link sendHandler}, {@link sendServers} or {@link fail}.
 *
 * @example
 * ```ts
 * const answer: HandlerAnswer = sendClients(["bob"], "hi");
 * // { header: { status: "0", command: { type: "sendClients", data: ["bob"] } }, data: "hi" }
 * ```
 */
export interface HandlerAnswer {
  header: {
    /** "0" is success; anything else makes the gateway report "bad" to the originator. */
    status: string;
    command?: HandlerCommand;
    /** Copied by the gateway into the originator's "bad" status report. */
    error?: ErrorInfo;
  };
  data: unknown;
}

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
 * How to read each request:
 * - `true`: every request must be an envelope `{data, meta}`; any other value is
 *   answered with `fail(..., "envelope_expected")` without calling `handle`.
 * - `false`: every request is the bare data, whatever it looks like; `meta` is never set.
 * - `"auto"` (default): a request is read as an envelope when it is an object with
 *   exactly the keys `data` and `meta`, and `meta.from` is a string; otherwise it is
 *   the bare data. Pick `true` or `false` if clients may send values of that shape.
 *
 * A handler cannot tell a gateway's envelope from a client's data shaped like
 * one, so a handler that trusts `meta.from` must be configured with
 * `"envelope": true` in the gateway: only then is every request wrapped.
 *
 * @example
 * ```ts
 * await serveHandler({ socket: "/tmp/h.sock", envelope: false, handle: ({ data }) => sendClients(["log"], data) });
 * ```
 */
export type EnvelopeMode = boolean | "auto";

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
   * (the gateway's own, about half the CPU per request of node:net there),
   * node:net on Deno and Node (Deno's adapter writes asynchronously, and was
   * measured slower than node:net for pipelined 4 KiB answers).
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
 * Why {@link serveHandler} could not start.
 *
 * @example
 * ```ts
 * try {
 *   await serveHandler({ socket: "/tmp/h.sock", handle });
 * } catch (err) {
 *   if (err instanceof HandlerStartError && err.code === "in_use") console.error("already running");
 * }
 * ```
 */
export class HandlerStartError extends Error {
  override name = "HandlerStartError";
  constructor(
    /** `in_use`: a live process answers on the path; `not_socket`: the path is some other file. */
    readonly code: "in_use" | "not_socket" | "listen_failed",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
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

/** In {@link runHandlerMain}, a stop signal repeated within this is the same request, not a second one. */
export const REPEATED_SIGNAL_MS = 500;

/**
 * Requests of one connection being worked on at once; past it the connection
 * is not read until answers go out, so a flood cannot exhaust memory.
 */
const MAX_IN_FLIGHT = 1024;

/** How long the stale-socket probe waits for a connection to be accepted. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * The handler's socket: only its own user (the gateway's, which starts it)
 * may connect, whatever the umask. Anyone else who could would send requests
 * with a forged envelope (`meta.from`).
 */
const SOCKET_MODE = 0o600;

// ---------------------------------------------------------------------------
// Answer builders

/**
 * Delivers `data` to every connected session of `users`.
 *
 * @param users one username or a list of them
 * @param data any JSON value; delivered as the `payload.data` of a `receivedMessage`
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data, meta }) => sendClients(["bob", "carol"], { from: meta?.from, data });
 * ```
 */
export function sendClients(users: string | string[], data: unknown): HandlerAnswer {
  return ok({ type: "sendClients", data: typeof users === "string" ? [users] : [...users] }, data);
}

/**
 * Passes `data` on to the handler of another type, whose answer the gateway
 * then carries out.
 *
 * @param type the handler type (message type) to pass to
 * @param data the request that handler receives
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) => sendHandler("chat", data);
 * ```
 */
export function sendHandler(type: string, data: unknown): HandlerAnswer {
  return ok({ type: "sendHandler", data: type }, data);
}

/**
 * Sends `data` to other Bester servers, where the handler of the same type
 * receives it.
 *
 * @param servers `"host:port"` or `"[ipv6]:port"`, one or a list
 * @param data the request the remote handler receives
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) => sendServers(["chat.example.org:2220"], data);
 * ```
 */
export function sendServers(servers: string | string[], data: unknown): HandlerAnswer {
  return ok({ type: "sendServers", data: typeof servers === "string" ? [servers] : [...servers] }, data);
}

/**
 * Refuses a request: the originator gets a "bad" status report carrying
 * `{code, message}`.
 *
 * @param message what went wrong, for the person who sent the message
 * @param code a stable, machine-readable code (default `"handler_failed"`)
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) =>
 *   typeof data === "string" ? sendClients(["bob"], data) : fail("data: expected a string", "bad_request");
 * ```
 */
export function fail(message: string, code = "handler_failed"): HandlerAnswer {
  return { header: { status: "1", error: { code, message } }, data: null };
}

function ok(command: HandlerCommand, data: unknown): HandlerAnswer {
  // undefined would vanish from the JSON; say null explicitly.
  return { header: { status: "0", command }, data: data === undefined ? null : data };
}

// ---------------------------------------------------------------------------
// Requests

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isEnvelope(value: unknown): value is { data: unknown; meta: Record<string, unknown> } {
  if (!isRecord(value)) return false;
  const keys = Object.keys(value);
  return (
    keys.length === 2 &&
    Object.hasOwn(value, "data") &&
    isRecord(value["meta"]) &&
    typeof value["meta"]["from"] === "string"
  );
}

function requestOf(value: unknown, mode: EnvelopeMode): HandlerRequest | HandlerAnswer {
  if (mode === false || (mode === "auto" && !isEnvelope(value))) return { data: value };
  if (!isEnvelope(value)) {
    return fail(
      'expected an envelope {"data", "meta": {"from", ...}}: set "envelope": true for this handler in the gateway config',
      "envelope_expected",
    );
  }
  const meta = value.meta;
  const via = Array.isArray(meta["via"]) ? meta["via"].filter((t): t is string => typeof t === "string") : [];
  return { data: value.data, meta: { ...(meta as unknown as HandlerMeta), via } };
}

function isAnswer(value: unknown): value is HandlerAnswer {
  return isRecord(value) && isRecord(value["header"]) && typeof value["header"]["status"] === "string";
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------
// Socket path

/** True if a process accepts connections on `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (live: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(live);
    };
    // A live listener accepts at once; silence this long means a wedged process: leave it alone.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    probe.once("connect", () => done(true));
    probe.once("error", () => done(false));
  });
}

/** Frees `path` for listening: only a socket file nobody answers on is removed. */
async function claimSocketPath(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) throw new HandlerStartError("not_socket", `${path} exists and is not a socket; refusing to replace it`);
  if (await answers(path)) throw new HandlerStartError("in_use", `${path} is in use: another process answers on it`);
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

// ---------------------------------------------------------------------------
// Serving

/**
 * One connection as the serving logic sees it; node:net or the runtime's
 * own sockets underneath.
 */
interface Wire {
  /** Queues one answer frame. */
  send(json: string): void;
  /** Answers were queued outside a read; `idle`: none is being worked on. */
  answered(idle: boolean): void;
  pause(): void;
  resume(): void;
  /** Closes once every queued answer is written. */
  finish(): void;
  destroy(): void;
}

/** What every connection of one handler shares. */
interface Service {
  answerFor(value: unknown, done: (json: string) => void): void;
  maxFrameBytes: number;
  log: (line: string) => void;
  /** Set once close() began: connections take no more requests. */
  closing: boolean;
  served: Set<Served>;
}

/** One gateway connection: its requests, answered in the order they came. */
class Served {
  #inFlight = 0;
  /** Reading stopped because MAX_IN_FLIGHT requests are being worked on. */
  #paused = false;
  /** No more requests will be read: close once the last answer is out. */
  #finishing = false;
  /** One slot per request in arrival order; answers leave in that order even when later ones are ready first. */
  #slots: (string | undefined)[] = [];
  #head = 0;
  readonly #decoder: FrameDecoder;
  #closed: (() => void) | undefined;

  constructor(
    readonly wire: Wire,
    readonly service: Service,
  ) {
    this.#decoder = new FrameDecoder(service.maxFrameBytes, requested, { owner: this });
    service.served.add(this);
    if (service.closing) this.end();
  }

  /** Feeds a chunk read from the gateway; false when the connection had to be closed. */
  data(chunk: Uint8Array): boolean {
    const err = this.#decoder.push(chunk);
    if (err === undefined) return true;
    this.service.log(`closing a gateway connection: ${err.message}`);
    this.wire.destroy();
    return false;
  }

  request(value: unknown): void {
    this.#inFlight++;
    // Indices stay valid: the array is only replaced once every slot is released.
    const at = this.#slots.push(undefined) - 1;
    this.service.answerFor(value, (json) => {
      this.#slots[at] = json;
      this.#release();
    });
    if (this.#inFlight >= MAX_IN_FLIGHT && !this.#paused) {
      this.#paused = true;
      this.wire.pause();
    }
  }

  #release(): void {
    const slots = this.#slots;
    while (this.#head < slots.length && slots[this.#head] !== undefined) {
      this.wire.send(slots[this.#head]!);
      slots[this.#head++] = undefined;
      this.#inFlight--;
    }
    if (this.#head === slots.length) {
      this.#slots = [];
      this.#head = 0;
    }
    if (this.#paused && this.#inFlight < MAX_IN_FLIGHT) {
      this.#paused = false;
      this.wire.resume();
    }
    this.wire.answered(this.#inFlight === 0);
    if (this.#inFlight === 0 && this.#finishing) this.wire.finish();
  }

  /** The gateway sent its last request (or the handler is closing): finish after the answers. */
  end(): void {
    this.#finishing = true;
    if (this.#inFlight === 0) this.wire.finish();
  }

  closed(): void {
    this.service.served.delete(this);
    this.#closed?.();
  }

  /** Resolves once the connection is closed. */
  whenClosed(): Promise<void> {
    if (!this.service.served.has(this)) return Promise.resolve();
    return new Promise((resolve) => (this.#closed = resolve));
  }
}

function requested(value: unknown, _index: number, owner: unknown): void {
  (owner as Served).request(value);
}

/** The runtime adapter's sockets: the adapter joins a turn's frames in one write itself. */
class RuntimeWire implements Wire {
  constructor(readonly conn: Conn) {}
  send(json: string): void {
    this.conn.writeFrame(json);
  }
  answered(): void {}
  pause(): void {
    this.conn.pause();
  }
  resume(): void {
    this.conn.resume();
  }
  finish(): void {
    this.conn.end();
  }
  destroy(): void {
    this.conn.destroy();
  }
}

/** node:net: on Deno and Node by default, and wherever asked for. */
class NodeWire implements Wire {
  // Answers ready to leave, joined into one write: under pipelined load one
  // system call carries every answer of a read, not one each.
  readonly #out = new OutBuffer();
  /** Inside a read: its end flushes. */
  reading = false;
  #flushQueued = false;
  readonly #flushNow = () => this.flush();

  constructor(readonly socket: Socket) {}

  send(json: string): void {
    this.#out.pushFrame(json);
  }

  answered(idle: boolean): void {
    // An answer finished outside a read waits for the turn's end only while more are due.
    if (this.reading) return;
    if (idle) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushNow);
    }
  }

  flush(): void {
    this.#flushQueued = false;
    if (this.#out.empty) return;
    // node:net may keep the chunk until the kernel takes it: hand it over.
    const chunk = this.#out.takeAll();
    if (this.socket.writable) this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  finish(): void {
    this.flush();
    // With every answer already handed to the kernel, a plain close delivers
    // them just the same and saves the shutdown() a graceful end adds, once
    // per message in per-message mode.
    if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The runtime adapter, or undefined where there is none (Node). */
async function runtimeSockets(): Promise<Runtime | undefined> {
  try {
    return await loadRuntime();
  } catch {
    return undefined;
  }
}

/** Listens through the runtime adapter; returns its close. */
async function listenRuntime(runtime: Runtime, socketPath: string, service: Service): Promise<() => Promise<void>> {
  const events: SocketEvents = {
    open(conn) {
      conn.context = new Served(new RuntimeWire(conn), service);
    },
    data(conn, chunk) {
      (conn.context as Served).data(chunk);
    },
    // A gateway that shuts its side after the request still gets the answer.
    end(conn) {
      (conn.context as Served).end();
    },
    close(conn, err) {
      if (err) service.log(`gateway connection error: ${err.message}`);
      (conn.context as Served | undefined)?.closed();
    },
  };
  let listener: Listener;
  try {
    listener = await runtime.listen({ kind: "unix", path: socketPath, mode: SOCKET_MODE }, events);
  } catch (err) {
    const code = err instanceof ListenError && err.code === "in_use" ? "in_use" : "listen_failed";
    throw new HandlerStartError(code, messageOf(err), { cause: err });
  }
  return () => listener.close();
}

/** Listens with node:net; returns its close. */
async function listenNode(socketPath: string, service: Service): Promise<() => Promise<void>> {
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const wire = new NodeWire(socket);
    const served = new Served(wire, service);
    socket.on("data", (chunk: Uint8Array) => {
      wire.reading = true;
      const ok = served.data(chunk);
      wire.reading = false;
      if (ok) wire.flush();
    });
    // allowHalfOpen: a gateway that shuts its side after the request still gets the answer.
    socket.on("end", () => served.end());
    socket.on("error", (err) => service.log(`gateway connection error: ${err.message}`));
    socket.on("close", () => served.closed());
  });
  const listen = (at: string) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code === "EADDRINUSE" ? "in_use" : "listen_failed";
        reject(new HandlerStartError(code, `cannot listen on ${socketPath}: ${err.message}`, { cause: err }));
      };
      server.once("error", onError);
      server.listen(at, () => {
        server.off("error", onError);
        resolve();
      });
    });
  await bindWithMode(socketPath, SOCKET_MODE, listen, () => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on("error", (err) => service.log(`listener error: ${err.message}`));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}

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

  await claimSocketPath(socketPath);
  const wanted = options.sockets ?? "auto";
  let runtime = wanted === "node:net" ? undefined : await runtimeSockets();
  // Measured: see ServeHandlerOptions.sockets and docs/PERFORMANCE.md.
  if (wanted === "auto" && runtime?.name !== "bun") runtime = undefined;
  const stopListening = runtime ? await listenRuntime(runtime, socketPath, service) : await listenNode(socketPath, service);
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
