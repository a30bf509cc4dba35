/**
 * The Deno implementation of the runtime adapter. Plain TCP and UNIX sockets
 * are node:net's (node-socket.ts), which Deno serves from native push-based
 * handles. TLS dials are `Deno.connectTls` connections, pull-based promises:
 * each runs a read loop that feeds the same push callbacks Bun calls, and
 * one write is kept in flight at a time; TLS listeners are node:tls sockets
 * given that shape (deno-tls-listener.ts).
 * @module
 */
import { fileURLToPath } from "node:url";
import { type DenoConn, type DenoNamespace, denoGlobal } from "./deno-api.ts";
import { TRIM_EVERY_MS, trimMallocPeriodically } from "./deno-malloc-trim.ts";
import { listenNodeTls } from "./deno-tls-listener.ts";
import { nextConnId } from "./conn-id.ts";
import { listenSocketWebSocket } from "./websocket-server.ts";
import { dialWithTimeout } from "./dial.ts";
import { fetchAnswer } from "./http-request.ts";
import { pumpLines } from "./lines.ts";
import { dialNodeSocket, listenNodeSocket } from "./node-socket.ts";
import { dialWebSocket } from "./websocket-client.ts";
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
import { bindWithMode, claimUnixPath, releaseUnixPath } from "./unix-path.ts";

/**
 * Each connection's pending read holds its own buffer, so its size is memory
 * per idle client: start small, and grow (up to the maximum) only for a
 * connection whose reads keep filling it.
 */
const READ_BUFFER_MIN_BYTES = 2 * 1024;
const READ_BUFFER_MAX_BYTES = 64 * 1024;

/**
 * A Deno connection as a byte transport. Deno's writes are promises, so one
 * is kept in flight: a write while none is takes everything offered (copied:
 * the caller's buffer is reused before the promise settles), a write while
 * one is takes nothing, and `drain` follows once the one in flight is done.
 */
class DenoConnAdapter implements Conn {
  readonly id = nextConnId();
  #writing = false;
  #ending = false;
  #closed = false;
  #paused: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(
    readonly conn: DenoConn,
    readonly remote: Endpoint,
    readonly events: SocketEvents,
    /** Accepted by a listener whose owner takes half-closes (SocketEvents.end). */
    readonly halfOpen = false,
    public context: unknown = undefined,
  ) {}

  start(): void {
    // Nagle's algorithm would hold small frames back for the peer's delayed
    // ACK (~40 ms); the layer above joins a turn's frames itself. Bun's
    // sockets disable it by default.
    this.conn.setNoDelay?.(true);
    this.events.open?.(this);
    void this.#readLoop();
  }

  async #readLoop(): Promise<void> {
    let buf = new Uint8Array(READ_BUFFER_MIN_BYTES);
    try {
      while (!this.#closed) {
        if (this.#paused) await this.#paused.promise;
        const n = await this.conn.read(buf);
        if (n === null) {
          // Half-open: the owner decides when to close (SocketEvents.end).
          if (this.halfOpen) return this.events.end?.(this);
          break;
        }
        if (this.#closed) return;
        this.events.data(this, buf.subarray(0, n));
        if (n === buf.byteLength && buf.byteLength < READ_BUFFER_MAX_BYTES) buf = new Uint8Array(buf.byteLength * 2);
      }
      this.#finish();
    } catch (err) {
      this.#finish(this.#closed ? undefined : (err as Error));
    }
  }

  write(bytes: Uint8Array, start: number, end: number): number {
    if (this.#closed || this.#ending || this.#writing || start >= end) return 0;
    this.#writing = true;
    // A copy: the caller reuses its buffer before the write settles. (Not
    // `slice`: on a node:buffer Buffer, which the caller's may be, it is a view.)
    const copy = new Uint8Array(end - start);
    copy.set(bytes.subarray(start, end));
    void this.#writeAll(copy);
    return end - start;
  }

  async #writeAll(chunk: Uint8Array): Promise<void> {
    try {
      while (chunk.byteLength > 0) chunk = chunk.subarray(await this.conn.write(chunk));
    } catch (err) {
      this.#writing = false;
      this.destroy(err as Error);
      return;
    }
    this.#writing = false;
    if (this.#closed) return;
    if (this.#ending) {
      this.#closeSocket();
      this.#finish();
      return;
    }
    this.events.drain?.(this);
  }

  pause(): void {
    if (this.#paused) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#paused = { promise, resolve };
  }

  resume(): void {
    const paused = this.#paused;
    this.#paused = undefined;
    paused?.resolve();
  }

  end(): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    if (!this.#writing) {
      this.#closeSocket();
      this.#finish();
    }
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.#closeSocket();
    this.#finish(err);
  }

  #closeSocket(): void {
    try {
      this.conn.close();
    } catch {
      // already closed by the peer
    }
  }

  #finish(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.resume();
    this.#closeSocket();
    this.events.close(this, err);
  }
}

function endpointOf(addr: DenoConn["remoteAddr"], fallback: Endpoint): Endpoint {
  if (addr.transport === "unix" || fallback.kind === "unix") return fallback;
  const host = addr.hostname ?? "";
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: addr.port ?? 0 };
}

function listenError(deno: DenoNamespace, at: Endpoint, err: unknown): ListenError {
  if (err instanceof ListenError) return err;
  const text = `cannot listen on ${formatEndpoint(at)}`;
  const code = (err as { code?: string }).code; // node:net's errors carry a code
  if (err instanceof deno.errors.AddrInUse! || code === "EADDRINUSE") return new ListenError("in_use", `${text}: address already in use`);
  if (err instanceof deno.errors.PermissionDenied! || err instanceof deno.errors.NotCapable! || code === "EACCES" || code === "EPERM") {
    return new ListenError("permission", `${text}: permission denied`);
  }
  return new ListenError("other", `${text}: ${(err as Error).message ?? err}`);
}

export function createDenoRuntime(): Runtime {
  const deno = denoGlobal();
  let trimming = false;

  async function listen(at: Endpoint, events: SocketEvents, options: { tls?: TlsServerOptions } = {}): Promise<Listener> {
    const halfOpen = events.end !== undefined;
    if (at.kind !== "unix" && options.tls) {
      // node:tls, not Deno.listenTls: see deno-tls-listener.ts. The handshake runs in each connection's own reads.
      let server;
      try {
        server = await listenNodeTls(at, options.tls, (conn) => {
          new DenoConnAdapter(conn, endpointOf(conn.remoteAddr, at), events, halfOpen).start();
        });
      } catch (err) {
        throw listenError(deno, at, err);
      }
      return {
        address: { ...at, port: server.port },
        async close() {
          server.close();
        },
      };
    }
    let server;
    try {
      if (at.kind === "unix") await claimUnixPath(at.path);
      server =
        at.kind === "unix" && at.mode !== undefined
          ? await bindWithMode(at.path, at.mode, (path) => listenNodeSocket(at, events, path), (s) => s.close())
          : await listenNodeSocket(at, events);
    } catch (err) {
      throw listenError(deno, at, err);
    }
    let open = true;
    return {
      address: at.kind === "unix" ? at : { ...at, port: server.port },
      async close() {
        // Once only: a second close would remove the socket file of a listener bound at the same path since.
        if (!open) return;
        open = false;
        server.close();
        if (at.kind === "unix") await releaseUnixPath(at.path);
      },
    };
  }

  async function connect(to: Endpoint, events: SocketEvents, timeoutMs?: number, options: ConnectOptions = {}): Promise<Conn> {
    if (to.kind === "unix" || options.tls === undefined) {
      const conn = await dialWithTimeout(to, dialNodeSocket(to, events, options.context), timeoutMs, (late) => late.socket.destroy());
      conn.start();
      return conn;
    }
    const conn = await dialWithTimeout(to, dialTls(to, options.tls), timeoutMs, (c) => c.close());
    const adapter = new DenoConnAdapter(conn, to, events, false, options.context);
    adapter.start();
    return adapter;
  }

  /** A TLS dial, settled by the handshake: it counts only once the server's certificate has been verified. */
  async function dialTls(to: { host: string; port: number }, tls: TlsClientOptions): Promise<DenoConn> {
    const conn = await deno.connectTls({ hostname: to.host, port: to.port, ...(tls.ca === undefined ? {} : { caCerts: [tls.ca] }) });
    try {
      await conn.handshake();
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }

  function spawn(argv: string[], options: SpawnOptions = {}): Child {
    const [cmd, ...args] = argv;
    const child = new deno.Command(cmd!, {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const drained = Promise.all([pumpLines(child.stdout, "stdout", options.onOutput), pumpLines(child.stderr, "stderr", options.onOutput)]).catch(() => {});
    return {
      pid: child.pid,
      exited: child.status.then(async (s) => {
        await drained;
        return { code: s.signal ? null : s.code, signal: s.signal };
      }),
      kill(signal = "SIGTERM") {
        try {
          child.kill(signal);
        } catch {
          // already exited
        }
      },
    };
  }

  async function serveHttp(at: Endpoint, fetch: FetchHandler): Promise<HttpServer> {
    try {
      if (at.kind === "unix") await claimUnixPath(at.path);
      let bound: Endpoint = at;
      const server = await new Promise<ReturnType<DenoNamespace["serve"]>>((resolve, reject) => {
        try {
          const onListen = (addr: { port?: number }) => {
            if (at.kind !== "unix") bound = { ...at, port: addr.port ?? at.port };
          };
          const s =
            at.kind === "unix"
              ? deno.serve({ path: at.path, onListen }, fetch)
              : deno.serve({ hostname: at.host, port: at.port, onListen }, fetch);
          resolve(s);
        } catch (err) {
          reject(err);
        }
      });
      return {
        address: bound,
        async close() {
          await server.shutdown();
          if (at.kind === "unix") await releaseUnixPath(at.path);
        },
      };
    } catch (err) {
      throw listenError(deno, at, err);
    }
  }

  async function httpRequest(to: Endpoint, request: HttpRequest): Promise<HttpAnswer> {
    if (to.kind !== "unix") return fetchAnswer(to, request, {});
    const client = deno.createHttpClient({ proxy: { transport: "unix", path: to.path } });
    try {
      return await fetchAnswer(to, request, { client });
    } finally {
      client.close();
    }
  }

  async function listenWebSocket(at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Promise<Listener> {
    try {
      return await listenSocketWebSocket(listen, at, events, options);
    } catch (err) {
      throw listenError(deno, at, err);
    }
  }

  return {
    name: "deno",
    version: deno.version.deno,
    listen,
    connect,
    listenWebSocket,
    connectWebSocket: (url, events, timeoutMs, options) => dialWebSocket(connect, url, events, timeoutMs, options),
    spawn,
    serveHttp,
    httpRequest,
    async openSqlite(path: string) {
      return (await import("./sqlite-deno.ts")).openSqlite(path);
    },
    onSignal(signal: Signal, fn: () => void) {
      deno.addSignalListener(signal, fn);
      return () => deno.removeSignalListener(signal, fn);
    },
    selfCommand() {
      const main = fileURLToPath(deno.mainModule);
      const config = fileURLToPath(new URL("../../deno.json", import.meta.url).href);
      return [deno.execPath(), "run", "--allow-all", "--config", config, main];
    },
    // Deno's build has no mimalloc (the allocator Bun's settings tune); glibc's free memory is trimmed instead.
    useServerSettings() {
      trimming = trimMallocPeriodically(deno);
    },
    serverSettings(): Record<string, string> {
      return trimming ? { malloc_trim: `every ${TRIM_EVERY_MS / 1000} s` } : {};
    },
    exit(code: number): never {
      return deno.exit(code);
    },
  };
}
