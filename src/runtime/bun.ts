/**
 * The Bun implementation of the runtime adapter: `Bun.listen` / `Bun.connect`
 * callbacks are Bun's fastest socket path, so they drive the core directly.
 * @module
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { OutBuffer } from "../protocol/out-buffer.ts";
import { bindWithMode } from "./unix-mode.ts";
import { claimUnixPath, releaseUnixPath } from "./unix-path.ts";
import {
  type Child,
  type Conn,
  type Endpoint,
  type FetchHandler,
  type HttpServer,
  ListenError,
  type Listener,
  type Runtime,
  type Signal,
  type SocketEvents,
  type SpawnOptions,
  type TlsClientOptions,
  type TlsServerOptions,
  formatEndpoint,
} from "./types.ts";
import { dialWithTimeout } from "./dial.ts";
import { pumpLines } from "./lines.ts";

let nextId = 1;

/**
 * Connections with bytes waiting, flushed once per event-loop turn. A
 * microtask flush would run after the first step of a promise chain, and a
 * relayed message reaches its writes several steps after its read: per turn,
 * every frame produced from one batch of reads leaves in one write per socket.
 */
let dirty = new Set<BunConn>();

/**
 * A connection with this many frames queued in one turn is flushed at once
 * instead of at the turn's end: its receiver can start on them while the
 * rest of the turn's output is produced, so the processes of a relay overlap
 * instead of taking turns. Measured with `bester bench` (persistent, window
 * 64): 1 pair of 100 B 66k → 97k msgs/s; 8 pairs and 4 KiB no worse. Lower
 * counts cost more writes under load (docs/PERFORMANCE.md).
 */
const EARLY_FLUSH_FRAMES = 32;

/**
 * Frames written per turn, on average over the last few turns, above which
 * this process counts as busy. A busy process's peers are busy too: an early
 * flush would start none of them sooner and costs a write and a wake-up, so
 * it flushes early every 2 × EARLY_FLUSH_FRAMES instead. A relay at 1 pair
 * (33–256 frames per turn) is never this busy; at 8 pairs × 100 B the
 * gateway is in two turns of three. Measured in alternating runs: 8 pairs ×
 * 100 B +4.5%, 1 pair level; a fixed 64 instead cost 1 pair 30%, and 128
 * when busy was worse than 64 (docs/PERFORMANCE.md).
 */
const BUSY_TURN_FRAMES = 192;
let flushScheduled = false;
/** Frames queued in this turn, their recent average per turn, and the early-flush count that follows from it. */
let turnFrames = 0;
let averageTurnFrames = 0;
let earlyFlushFrames = EARLY_FLUSH_FRAMES;

function flushDirty(): void {
  flushScheduled = false;
  averageTurnFrames += (turnFrames - averageTurnFrames) / 8;
  turnFrames = 0;
  earlyFlushFrames = averageTurnFrames > BUSY_TURN_FRAMES ? 2 * EARLY_FLUSH_FRAMES : EARLY_FLUSH_FRAMES;
  const batch = dirty;
  dirty = new Set();
  for (const conn of batch) conn.flush();
}

function markDirty(conn: BunConn): void {
  dirty.add(conn);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushDirty);
  }
}

class BunConn implements Conn {
  readonly id = nextId++;
  context: unknown = undefined;
  /** Made on the first write and dropped once written out: idle connections hold none. */
  #queue: OutBuffer | undefined;
  #flushScheduled = false;
  /** Writes queued since the last flush. */
  #framesThisTurn = 0;
  /** Bytes queued since the last flush: not offered to the kernel yet (see Conn.pendingBytes). */
  #unoffered = 0;
  #ending = false;
  #closed = false;
  socket: Socket<BunConn> | undefined;

  constructor(
    readonly remote: Endpoint,
    readonly events: SocketEvents,
  ) {}

  get pendingBytes(): number {
    return this.#queue === undefined ? 0 : this.#queue.bytes - this.#unoffered;
  }

  write(bytes: Uint8Array): void {
    if (this.#closed || this.#ending) return;
    (this.#queue ??= new OutBuffer()).push(bytes);
    this.#unoffered += bytes.byteLength;
    this.#queued();
  }

  writeFrame(json: string, more?: string, last?: string): void {
    if (this.#closed || this.#ending) return;
    const queue = (this.#queue ??= new OutBuffer());
    const before = queue.bytes;
    queue.pushFrame(json, more, last);
    this.#unoffered += queue.bytes - before;
    this.#queued();
  }

  #queued(): void {
    // A long run of frames leaves at once; its receiver starts on it while
    // this turn produces the rest (see EARLY_FLUSH_FRAMES).
    turnFrames++;
    if (++this.#framesThisTurn >= earlyFlushFrames) {
      this.flush();
      return;
    }
    // Coalesce: everything written in this turn leaves in one socket write.
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      markDirty(this);
    }
  }

  /** Writes what the kernel takes; returns true when the queue is empty. */
  flush(): boolean {
    this.#flushScheduled = false;
    this.#framesThisTurn = 0;
    this.#unoffered = 0;
    const socket = this.socket;
    if (!socket || this.#closed) return false;
    const queue = this.#queue;
    if (queue === undefined) return true;
    // A backlog may span blocks: one write each, until the kernel stops taking.
    while (!queue.empty) {
      const length = queue.headLength;
      // A range of the block: a subarray() view per write is slow on JavaScriptCore.
      const written = Math.max(socket.write(queue.headBlock, queue.headStart, length), 0);
      queue.consume(written);
      if (written < length) return false;
    }
    this.#queue = undefined;
    if (this.#ending) socket.end();
    return true;
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (this.#queue === undefined && !this.#flushScheduled) this.socket?.end();
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#queue?.clear();
    this.#queue = undefined;
    this.socket?.terminate();
    this.closed(err);
  }

  closed(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue?.clear();
    this.#queue = undefined;
    this.events.close(this, err);
  }
}

function remoteOf(socket: Socket<BunConn>, at: Endpoint): Endpoint {
  if (at.kind === "unix") return at;
  const host = socket.remoteAddress;
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: socket.remotePort };
}

/** One set of callbacks for every socket: they read their state from `socket.data`. */
const SOCKET_HANDLERS = {
  open(socket: Socket<BunConn>) {
    const conn = socket.data;
    conn.socket = socket;
    conn.events.open?.(conn);
    // Bytes written before the socket existed go out now.
    if (conn.pendingBytes > 0) markDirty(conn);
  },
  data(socket: Socket<BunConn>, chunk: Uint8Array) {
    socket.data.events.data(socket.data, chunk);
  },
  drain(socket: Socket<BunConn>) {
    const conn = socket.data;
    if (conn.flush()) conn.events.drain?.(conn);
  },
  close(socket: Socket<BunConn>, err?: Error) {
    socket.data?.closed(err ?? undefined);
  },
  error(socket: Socket<BunConn>, err: Error) {
    socket.data?.destroy(err);
  },
};

/** Dials: a failed connect rejects Bun.connect's promise, nothing more to do. */
const DIAL_HANDLERS = { ...SOCKET_HANDLERS, connectError() {} };

function listenError(at: Endpoint, err: unknown): ListenError {
  if (err instanceof ListenError) return err;
  const code = (err as { code?: string }).code;
  const text = `cannot listen on ${formatEndpoint(at)}`;
  if (code === "EADDRINUSE") return new ListenError("in_use", `${text}: address already in use`);
  if (code === "EACCES" || code === "EPERM") return new ListenError("permission", `${text}: permission denied`);
  return new ListenError("other", `${text}: ${(err as Error).message ?? err}`);
}

async function unixAnswers(path: string): Promise<boolean> {
  try {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } });
    socket.terminate();
    return true;
  } catch {
    return false;
  }
}

/** For listeners whose owner takes the peer's half-close (SocketEvents.end). */
const HALF_OPEN_HANDLERS = {
  ...SOCKET_HANDLERS,
  end(socket: Socket<BunConn>) {
    socket.data.events.end?.(socket.data);
  },
};

async function listen(at: Endpoint, events: SocketEvents, options: { tls?: TlsServerOptions } = {}): Promise<Listener> {
  const allowHalfOpen = events.end !== undefined;
  const handlers = allowHalfOpen ? HALF_OPEN_HANDLERS : SOCKET_HANDLERS;
  const base = {
    ...handlers,
    open(socket: Socket<BunConn>) {
      socket.data = new BunConn(remoteOf(socket, at), events);
      handlers.open(socket);
    },
  };
  let server: TCPSocketListener<BunConn> | UnixSocketListener<BunConn>;
  try {
    if (at.kind === "unix") {
      await claimUnixPath(at.path, unixAnswers);
      const bind = (path: string) => Bun.listen<BunConn>({ unix: path, socket: base, allowHalfOpen });
      server = at.mode === undefined ? bind(at.path) : await bindWithMode(at.path, at.mode, bind, (s) => s.stop(true));
    } else {
      // A handshake handler makes open come at accept, not after the handshake: the owner's
      // timers (the gateway's auth timeout) then also cover a client that never handshakes.
      // A failed handshake closes the socket by itself.
      const tls = options.tls === undefined ? {} : { tls: { cert: options.tls.cert, key: options.tls.key } };
      const socket = options.tls === undefined ? base : { ...base, handshake() {} };
      server = Bun.listen<BunConn>({ hostname: at.host, port: at.port, socket, exclusive: true, allowHalfOpen, ...tls });
    }
  } catch (err) {
    throw listenError(at, err);
  }
  const address: Endpoint =
    at.kind === "unix" ? at : { kind: at.kind, host: at.host, port: (server as TCPSocketListener<BunConn>).port };
  let closed = false;
  return {
    address,
    async close() {
      // Once only: a second close would remove the socket file of a listener bound at the same path since.
      if (closed) return;
      closed = true;
      server.stop(false);
      if (at.kind === "unix") await releaseUnixPath(at.path);
    },
  };
}

async function connect(to: Endpoint, events: SocketEvents, timeoutMs?: number, options: { tls?: TlsClientOptions } = {}): Promise<Conn> {
  const conn = new BunConn(to, events);
  const dial =
    to.kind === "unix"
      ? Bun.connect<BunConn>({ unix: to.path, socket: DIAL_HANDLERS, data: conn })
      : options.tls === undefined
        ? Bun.connect<BunConn>({ hostname: to.host, port: to.port, socket: DIAL_HANDLERS, data: conn })
        : dialTls(to, conn, options.tls);
  await dialWithTimeout(to, dial, timeoutMs, (s) => s.terminate());
  return conn;
}

/** A TLS dial, settled by the handshake: it counts only once the server's certificate has been verified. */
function dialTls(to: { host: string; port: number }, conn: BunConn, options: TlsClientOptions): Promise<Socket<BunConn>> {
  let up = false;
  let verified!: (err: Error | undefined) => void;
  const handshake = new Promise<void>((resolve, reject) => {
    verified = (err) => (err === undefined ? resolve() : reject(err));
  });
  const socket = {
    ...DIAL_HANDLERS,
    handshake(s: Socket<BunConn>, ok: boolean, err: Error | null) {
      up = ok && err === null;
      verified(up ? undefined : (err ?? new Error("TLS handshake failed")));
      if (!up) s.terminate();
    },
    close(s: Socket<BunConn>, err?: Error) {
      // Before the handshake the dial fails instead: the owner never had this connection.
      if (!up) return verified(err ?? new Error("closed during the TLS handshake"));
      DIAL_HANDLERS.close(s, err);
    },
  };
  const tls = { ...(options.ca === undefined ? {} : { ca: options.ca }), serverName: to.host, rejectUnauthorized: true };
  return Bun.connect<BunConn>({ hostname: to.host, port: to.port, socket, data: conn, tls }).then(async (s) => {
    await handshake;
    return s;
  });
}

function spawn(argv: string[], options: SpawnOptions = {}): Child {
  const proc = Bun.spawn(argv, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const drained = Promise.all([pumpLines(proc.stdout, "stdout", options.onOutput), pumpLines(proc.stderr, "stderr", options.onOutput)]).catch(() => {});
  return {
    pid: proc.pid,
    exited: proc.exited.then(async (code) => {
      await drained;
      return proc.signalCode ? { code: null, signal: String(proc.signalCode) } : { code, signal: null };
    }),
    kill(signal = "SIGTERM") {
      proc.kill(signal);
    },
  };
}

async function serveHttp(at: Endpoint, fetch: FetchHandler): Promise<HttpServer> {
  try {
    if (at.kind === "unix") await claimUnixPath(at.path, unixAnswers);
    const server =
      at.kind === "unix"
        ? Bun.serve({ unix: at.path, fetch })
        : Bun.serve({ hostname: at.host, port: at.port, fetch });
    const address: Endpoint = at.kind === "unix" ? at : { ...at, port: server.port ?? at.port };
    return {
      address,
      async close(force = false) {
        await server.stop(force);
        if (at.kind === "unix") await releaseUnixPath(at.path);
      },
    };
  } catch (err) {
    throw listenError(at, err);
  }
}

function selfCommand(): string[] {
  // A compiled binary carries its entry inside a virtual /$bunfs/ path.
  if (Bun.main.startsWith("/$bunfs/") || Bun.main.includes("~BUN")) return [process.execPath];
  return [process.execPath, Bun.main];
}

/**
 * How long Bun's allocator (mimalloc) keeps freed memory before handing it
 * back to the kernel. Bun's build sets 100 ms; under load that is memory
 * about to be used again (every socket read arrives in a fresh buffer of up
 * to ~150 KB), and each page given back faults in again on its next use.
 * 1 s, the default of upstream mimalloc's current branch, keeps what a busy
 * server cycles through and still gives memory back a second after the load
 * stops.
 * Measured with `bester bench` (docs/PERFORMANCE.md, step 26).
 */
const PURGE_DELAY_VARIABLE = "MIMALLOC_PURGE_DELAY";
const SERVER_PURGE_DELAY_MS = "1000";

function useServerSettings(): void {
  // Set already: by the operator, or by the start this one replaced.
  if (process.env[PURGE_DELAY_VARIABLE] !== undefined) return;
  // Windows has no way to start again in place (same pid): it keeps Bun's default.
  if (process.platform === "win32") return;
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string | undefined>) => never }).execve;
  if (typeof execve !== "function") return;
  // mimalloc reads its options once, at start: hence a fresh start, in place.
  // A script keeps its runtime's flags (--smol, …); a compiled binary carries its own.
  const [program, ...entry] = selfCommand();
  const argv = entry.length === 0 ? [program!, ...process.argv.slice(2)] : [program!, ...process.execArgv, ...entry, ...process.argv.slice(2)];
  try {
    execve.call(process, process.execPath, argv, { ...process.env, [PURGE_DELAY_VARIABLE]: SERVER_PURGE_DELAY_MS });
  } catch (err) {
    console.error(`bester: could not restart with ${PURGE_DELAY_VARIABLE}=${SERVER_PURGE_DELAY_MS} (${(err as Error).message}); running with Bun's default`);
  }
}

function serverSettings(): Record<string, string> {
  const delay = process.env[PURGE_DELAY_VARIABLE];
  return delay === undefined ? {} : { [PURGE_DELAY_VARIABLE]: delay };
}

export const bunRuntime: Runtime = {
  name: "bun",
  version: Bun.version,
  listen,
  connect,
  spawn,
  serveHttp,
  async openSqlite(path: string) {
    return (await import("./sqlite-bun.ts")).openSqlite(path);
  },
  onSignal(signal: Signal, fn: () => void) {
    process.on(signal, fn);
    return () => process.off(signal, fn);
  },
  selfCommand,
  useServerSettings,
  serverSettings,
  exit(code: number): never {
    process.exit(code);
  },
};
