/**
 * The Bun implementation of the runtime adapter: `Bun.listen` / `Bun.connect`
 * callbacks are Bun's fastest socket path, so they drive the core directly.
 * @module
 */
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import { bindWithMode, claimUnixPath, releaseUnixPath } from "./unix-path.ts";
import {
  type Child,
  type Conn,
  type ConnectOptions,
  type Endpoint,
  type FetchHandler,
  type HttpAnswer,
  type HttpRequest,
  type HttpServer,
  ListenError,
  type Listener,
  type Runtime,
  type Signal,
  type SocketEvents,
  type SpawnOptions,
  type TlsClientOptions,
  type TlsServerOptions,
  type WebSocketListenOptions,
  formatEndpoint,
} from "./types.ts";
import { listenBunWebSocket } from "./bun-websocket.ts";
import { nextConnId } from "./conn-id.ts";
import { dialWithTimeout } from "./dial.ts";
import { fetchAnswer } from "./http-request.ts";
import { pumpLines } from "./lines.ts";
import { dialWebSocket } from "./websocket-client.ts";


/** A Bun socket as a byte transport: Bun's own write already takes what the kernel takes. */
class BunConn implements Conn {
  readonly id = nextConnId();
  socket: Socket<BunConn> | undefined;
  #closed = false;
  /**
   * An accepted TCP peer is kept as its address and port, and the endpoint
   * made when asked for (rarely: logins and logs), since idle connections are
   * many; any other connection's endpoint is shared with its listener or dial.
   */
  #peer: Endpoint | string;
  #port = 0;

  constructor(
    peer: Endpoint | { host: string; port: number },
    readonly events: SocketEvents,
    public context: unknown = undefined,
  ) {
    if ("kind" in peer) this.#peer = peer;
    else {
      this.#peer = peer.host;
      this.#port = peer.port;
    }
  }

  get remote(): Endpoint {
    const peer = this.#peer;
    if (typeof peer !== "string") return peer;
    return { kind: peer.includes(":") ? "tcp6" : "tcp4", host: peer, port: this.#port };
  }

  write(bytes: Uint8Array, start: number, end: number): number {
    const socket = this.socket;
    if (socket === undefined || this.#closed) return 0;
    // A range of the block: a subarray() view per write is slow on JavaScriptCore.
    return Math.max(socket.write(bytes, start, end - start), 0);
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  end(): void {
    if (!this.#closed) this.socket?.end();
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.socket?.terminate();
    this.closed(err);
  }

  closed(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.events.close(this, err);
  }
}

function remoteOf(socket: Socket<BunConn>, at: Endpoint): Endpoint | { host: string; port: number } {
  return at.kind === "unix" ? at : { host: socket.remoteAddress, port: socket.remotePort };
}

/** One set of callbacks for every socket: they read their state from `socket.data`. */
const SOCKET_HANDLERS = {
  open(socket: Socket<BunConn>) {
    const conn = socket.data;
    conn.socket = socket;
    conn.events.open?.(conn);
  },
  data(socket: Socket<BunConn>, chunk: Uint8Array) {
    socket.data.events.data(socket.data, chunk);
  },
  drain(socket: Socket<BunConn>) {
    socket.data.events.drain?.(socket.data);
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
      await claimUnixPath(at.path);
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

async function connect(to: Endpoint, events: SocketEvents, timeoutMs?: number, options: ConnectOptions = {}): Promise<Conn> {
  const conn = new BunConn(to, events, options.context);
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
    if (at.kind === "unix") await claimUnixPath(at.path);
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

function httpRequest(to: Endpoint, request: HttpRequest): Promise<HttpAnswer> {
  return fetchAnswer(to, request, to.kind === "unix" ? { unix: to.path } : {});
}

function selfCommand(): string[] {
  // A compiled binary carries its entry inside a virtual /$bunfs/ path.
  if (Bun.main.startsWith("/$bunfs/") || Bun.main.includes("~BUN")) return [process.execPath];
  return [process.execPath, Bun.main];
}

/**
 * How long Bun's allocator (mimalloc) keeps freed memory before handing it
 * back to the kernel. Bun's build sets 100 ms; under load that is memory
 * about to be used again (every socket read arrives in a fresh buffer), and
 * each page given back faults in again on its next use. 1 s, the default of
 * upstream mimalloc's current branch, keeps what a busy server cycles
 * through and still gives memory back a second after the load stops.
 * The figures: docs/PERFORMANCE.md, "MIMALLOC_PURGE_DELAY on Bun".
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

async function listenWebSocket(at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Promise<Listener> {
  try {
    return listenBunWebSocket(at, events, options);
  } catch (err) {
    throw listenError(at, err);
  }
}

export const bunRuntime: Runtime = {
  name: "bun",
  version: Bun.version,
  listen,
  connect,
  listenWebSocket,
  connectWebSocket: (url, events, timeoutMs, options) => dialWebSocket(connect, url, events, timeoutMs, options),
  spawn,
  serveHttp,
  httpRequest,
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
