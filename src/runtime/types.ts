/**
 * The runtime adapter interface: everything the gateway needs from Bun or Deno.
 *
 * The core is handed a {@link Runtime} and never looks one up; only
 * `src/runtime/index.ts` decides which implementation runs. It is a byte
 * transport: reads are push-based (callbacks, as Bun's sockets deliver
 * them); a write offers bytes and learns at once how many the transport
 * took, and `drain` says when it takes more. Queueing, framing and the
 * limits on both live above it, the same on every runtime.
 *
 * @module
 */

/** Where a socket listens or connects. */
export type Endpoint =
  | { kind: "tcp4" | "tcp6"; host: string; port: number }
  /** `mode`: a listener's socket file gets it whatever the umask (unix-mode.ts); without it, the umask decides. */
  | { kind: "unix"; path: string; mode?: number };

export type Signal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGUSR1" | "SIGUSR2";

/** Callbacks for one socket. `close` fires exactly once per connection. */
export interface SocketEvents {
  /** The connection is up; for a dial, before `connect` resolves. */
  open?(conn: Conn): void;
  /** The chunk may be reused by the runtime after the call: copy what you keep. */
  data(conn: Conn, chunk: Uint8Array): void;
  /** The transport takes bytes again after a write that it did not take whole. */
  drain?(conn: Conn): void;
  /**
   * Listeners only: the peer finished sending (half-close). Given, it keeps
   * such a connection open for writing, and the owner closes it with `end`
   * or `destroy`; absent, the peer's end closes the connection.
   */
  end?(conn: Conn): void;
  close(conn: Conn, err?: Error): void;
}

/** One stream connection (accepted or dialled). */
export interface Conn {
  /** Process-unique, increasing. */
  readonly id: number;
  /** The peer: its address for TCP, the socket path for UNIX connections. */
  readonly remote: Endpoint;
  /** Free for the owner of the connection; the adapter never reads it. */
  context: unknown;
  /**
   * Offers `bytes[start, end)`; returns how many the transport took, from
   * the front (0 up to all of them). What it took is its own: the caller may
   * reuse its buffer at once. What it did not take is offered again after
   * `drain`. On a closed connection it takes nothing.
   */
  write(bytes: Uint8Array, start: number, end: number): number;
  /** Stops `data` callbacks until `resume`. */
  pause(): void;
  resume(): void;
  /**
   * Closes once what the transport took is written. `kind` says why, for a
   * transport that can tell its peer (a WebSocket's close code); a byte
   * stream has no way to and ignores it.
   */
  end(kind?: CloseKind): void;
  /** Closes now, dropping what is not written. */
  destroy(err?: Error): void;
}

/**
 * Why a connection is ended, as far as its peer may be told: a normal end, a
 * broken rule (a fatal error), a frame over the size limit, or the server
 * going away. A WebSocket sends it as its close code (1000, 1008, 1009, 1001).
 */
export type CloseKind = "normal" | "policy" | "too_big" | "going_away";

/** A TCP listener's certificate chain and private key, as PEM text. */
export interface TlsServerOptions {
  cert: string;
  key: string;
}

/** A dial's options: `context` is the connection's from its first event on. */
export interface ConnectOptions {
  tls?: TlsClientOptions;
  context?: unknown;
}

/** A TLS dial: `ca` (PEM) replaces the system's CAs; the certificate must name the host dialled. */
export interface TlsClientOptions {
  ca?: string;
}

export interface Listener {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: Endpoint;
  /** Stops accepting; open connections stay. Removes a UNIX socket file it created. */
  close(): Promise<void>;
}

/**
 * A WebSocket listener's options. Each accepted WebSocket is a {@link Conn}:
 * every message it receives (text or binary) reaches `data` as one framed
 * chunk (a 4-byte little-endian length, then the message's bytes), and a
 * write takes whole frames and sends each one's body as one text message.
 */
export interface WebSocketListenOptions {
  /** The path upgrades are taken on (e.g. `/bester`); a request there that is no upgrade gets 426. */
  path: string;
  tls?: TlsServerOptions;
  /**
   * Checked before an upgrade: undefined accepts it, a reason refuses it with
   * HTTP 403 (the reason is the body). The caller logs what it refuses.
   */
  admit?(request: Request, remote: Endpoint): string | undefined;
  /** Answers every other HTTP request on the port; without it, 404. */
  fetch?: FetchHandler;
  /**
   * The largest message the WebSocket server reads; a larger one closes the
   * connection with 1009 before it is read whole.
   */
  maxMessageBytes: number;
  /**
   * Bytes of messages held while reading is paused. A WebSocket cannot make
   * its peer wait as a TCP window does, so past this the connection is
   * closed. Read at each check: a getter may follow a reloaded setting.
   */
  readonly maxPausedBytes: number;
}

/** A WebSocket dial's options: `context` as for {@link ConnectOptions}; `tls` for a `wss://` URL (its `ca`). */
export interface WebSocketConnectOptions {
  context?: unknown;
  tls?: TlsClientOptions;
}

export interface ChildExit {
  code: number | null;
  signal: string | null;
}

export interface Child {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
  kill(signal?: Signal | "SIGKILL"): void;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Called for each line the child writes to stdout or stderr. */
  onOutput?(stream: "stdout" | "stderr", line: string): void;
}

export interface HttpServer {
  readonly address: Endpoint;
  close(force?: boolean): Promise<void>;
}

export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** One HTTP request, as {@link Runtime.httpRequest} sends it. */
export interface HttpRequest {
  method: string;
  /** The path and query, e.g. `/v1/clients`. */
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** Rejects when the whole answer has not arrived by then. */
  timeoutMs: number;
}

/** A whole HTTP answer. */
export interface HttpAnswer {
  status: number;
  contentType: string | null;
  body: string;
}

export type SqlValue = string | number | bigint | Uint8Array | null;

/** A synchronous SQLite database: `bun:sqlite` on Bun, `node:sqlite` on Deno. */
export interface Sqlite {
  exec(sql: string): void;
  run(sql: string, ...params: SqlValue[]): { changes: number };
  get<T = Record<string, unknown>>(sql: string, ...params: SqlValue[]): T | undefined;
  all<T = Record<string, unknown>>(sql: string, ...params: SqlValue[]): T[];
  close(): void;
}

/** The one object through which the core touches its runtime. */
export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  /**
   * Listens on tcp4, tcp6 or unix. A UNIX path that already exists is
   * replaced only if it is a socket nobody answers on; a live socket or any
   * other kind of file is an error. With `tls` (TCP only), every accepted
   * connection speaks TLS; one whose handshake fails just closes.
   */
  listen(at: Endpoint, events: SocketEvents, options?: { tls?: TlsServerOptions }): Promise<Listener>;
  /**
   * Dials; rejects on refusal or when `timeoutMs` passes first. Without
   * `timeoutMs` there is no deadline here: the caller must keep one. With
   * `tls` (TCP only) it resolves once the handshake has verified the server.
   */
  connect(to: Endpoint, events: SocketEvents, timeoutMs?: number, options?: ConnectOptions): Promise<Conn>;
  /**
   * Listens for WebSocket connections (RFC 6455) on TCP, with TLS if given
   * (`wss://`), and answers the port's other HTTP requests with `fetch`.
   */
  listenWebSocket(at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Promise<Listener>;
  /**
   * Dials a `ws://` or `wss://` URL: the connection speaks frames as a
   * listener's do (each message in is one framed chunk, each frame written
   * goes out as one text message), and pauses and drains as a socket does.
   * Rejects on refusal or when `timeoutMs` passes first.
   */
  connectWebSocket(url: string, events: SocketEvents, timeoutMs: number, options?: WebSocketConnectOptions): Promise<Conn>;
  spawn(argv: string[], options?: SpawnOptions): Child;
  serveHttp(at: Endpoint, fetch: FetchHandler): Promise<HttpServer>;
  /** Sends one HTTP request to a server on TCP or on a UNIX socket and reads its whole answer; rejects when none answers. */
  httpRequest(to: Endpoint, request: HttpRequest): Promise<HttpAnswer>;
  /** Opens (creating if needed) a SQLite database file; loaded lazily so neither runtime resolves the other's module. */
  openSqlite(path: string): Promise<Sqlite>;
  /** Subscribes to a process signal; returns the unsubscribe function. */
  onSignal(signal: Signal, fn: () => void): () => void;
  /** Argv that starts this same program again (the script under a runtime, or the compiled binary). */
  selfCommand(): string[];
  /**
   * Called first by the long-running commands (`serve`, `bench`): puts in
   * place the settings a busy server wants that the runtime reads only when
   * a process starts. If that takes a fresh start, it replaces this process
   * in place (same pid, arguments and open files) and does not return;
   * settings the operator gave are kept as given.
   */
  useServerSettings(): void;
  /** Those settings as this process runs with them (variable → value; unset ones left out), for reports. */
  serverSettings(): Record<string, string>;
  exit(code: number): never;
}

/** An error raised by `listen` with a stable code the CLI can explain. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(
    readonly code: "in_use" | "not_socket" | "permission" | "other",
    message: string,
  ) {
    super(message);
  }
}

/** Formats an endpoint for logs: `127.0.0.1:2220`, `[::1]:2221`, `unix:/path`. */
export function formatEndpoint(at: Endpoint): string {
  if (at.kind === "unix") return `unix:${at.path}`;
  return at.kind === "tcp6" ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`;
}
