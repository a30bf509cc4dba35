/**
 * The adapter's own WebSocket client (RFC 6455), over its TCP sockets: the
 * dialled side of `Runtime.connectWebSocket`. The runtimes' `WebSocket`
 * class fires one event per message and sends each in a write of its own,
 * which costs a client that drives many connections (the bench's load
 * generator) more than the gateway it measures; this one asks for the
 * upgrade and is then a {@link SocketWebSocket}.
 * @module
 */
import { Buffer } from "node:buffer";
import { randomFillSync } from "node:crypto";
import type { Conn, ConnectOptions, Endpoint, SocketEvents, WebSocketConnectOptions } from "./types.ts";
import { acceptKey, MAX_HANDSHAKE_BYTES } from "./websocket-http.ts";
import { CARRIER_EVENTS, concat, SocketWebSocket } from "./websocket-socket.ts";

/** The runtime's own dial, which this rides on. */
type Connect = (to: Endpoint, events: SocketEvents, timeoutMs?: number, options?: ConnectOptions) => Promise<Conn>;

class WebSocketClientConn extends SocketWebSocket {
  constructor(
    readonly url: URL,
    readonly key: string,
    events: SocketEvents,
    readonly settled: (err?: Error) => void,
    context: unknown,
  ) {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    super("client", { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: Number(url.port || (url.protocol === "wss:" ? 443 : 80)) }, events, context);
  }

  /** The socket is up: ask for the upgrade. */
  socketOpen(socket: Conn): void {
    this.socket = socket;
    const request = [
      `GET ${this.url.pathname}${this.url.search} HTTP/1.1`,
      `Host: ${this.url.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${this.key}`,
      "Sec-WebSocket-Version: 13",
      "",
      "",
    ].join("\r\n");
    const bytes = new TextEncoder().encode(request);
    this.send(bytes, bytes.byteLength);
  }

  override received(chunk: Uint8Array): void {
    if (this.open) return super.received(chunk);
    const bytes = this.rest === undefined ? chunk : concat(this.rest, chunk);
    this.rest = undefined;
    const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.byteLength, MAX_HANDSHAKE_BYTES)));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      if (bytes.byteLength >= MAX_HANDSHAKE_BYTES) return this.#fail("no WebSocket answer: the server's reply has no end");
      this.rest = bytes.slice();
      return;
    }
    const head = text.slice(0, end);
    const status = /^HTTP\/1\.1 (\d{3})[^\r]*/.exec(head);
    if (status?.[1] !== "101") return this.#fail(`the server refused the WebSocket: ${status?.[0] ?? head.slice(0, 80)}`);
    const accept = /\r\nsec-websocket-accept:[ \t]*(\S+)/i.exec(head)?.[1];
    if (accept !== acceptKey(this.key)) return this.#fail("the server's Sec-WebSocket-Accept is wrong: not a WebSocket server");
    this.settled();
    this.opened(bytes.subarray(end + 4));
  }

  #fail(why: string): void {
    this.settled(new Error(why));
    this.socket.destroy();
  }

  protected override notOpened(err?: Error): void {
    this.settled(err ?? new Error("the connection closed before the WebSocket upgrade"));
  }
}

/** The socket's events, forwarded to the WebSocket it carries (its context). */
const SOCKET_EVENTS: SocketEvents = {
  ...CARRIER_EVENTS,
  open(socket) {
    (socket.context as WebSocketClientConn).socketOpen(socket);
  },
};

/** Dials `url` (ws: or wss:) over `connect`; resolves once the server took the upgrade. */
export async function dialWebSocket(
  connect: Connect,
  url: string,
  events: SocketEvents,
  timeoutMs: number,
  options: WebSocketConnectOptions = {},
): Promise<Conn> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`'${url}' is not a URL: expected ws://HOST:PORT/PATH or wss://...`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new Error(`'${url}' is not a WebSocket URL: expected ws:// or wss://`);
  const key = new Uint8Array(16);
  randomFillSync(key);
  let settle!: (err?: Error) => void;
  const upgraded = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
  const conn = new WebSocketClientConn(parsed, Buffer.from(key).toString("base64"), events, (err) => settle(err), options.context);
  const started = Date.now();
  const tls = parsed.protocol === "wss:" ? { tls: options.tls ?? {} } : {};
  const socket = await connect(conn.remote, SOCKET_EVENTS, timeoutMs, { context: conn, ...tls });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      upgraded,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no WebSocket upgrade from ${url} within ${timeoutMs} ms`)), Math.max(0, timeoutMs - (Date.now() - started)));
      }),
    ]);
  } catch (err) {
    socket.destroy();
    throw new Error(`cannot connect to ${url}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return conn;
}
