/**
 * The standard (WHATWG) `WebSocket` as a connection's peer: what Deno's
 * server hands over after an upgrade, and what both runtimes dial with.
 * It has no drain event, so a stopped write polls `bufferedAmount` until it
 * is low again; and it cannot stop reading.
 * @module
 */
import { HIGH_WATER_BYTES, WebSocketConn, type WebSocketPeer } from "./websocket-conn.ts";
import type { Conn, Endpoint, SocketEvents, WebSocketConnectOptions } from "./types.ts";

/** How often a stopped write looks whether the runtime has written out what it holds. */
const DRAIN_POLL_MS = 1;
/** A stopped write goes on once the bytes held have fallen to this. */
const LOW_WATER_BYTES = HIGH_WATER_BYTES / 2;
/** A dialled connection never pauses (the bench's and tests' clients read all they get): no bound of its own. */
const CLIENT_MAX_PAUSED_BYTES = () => Number.MAX_SAFE_INTEGER;

function poll(peer: StandardPeer): void {
  const socket = peer.socket;
  if (socket.readyState !== WebSocket.OPEN) {
    peer.polling = false;
    return;
  }
  if (socket.bufferedAmount > LOW_WATER_BYTES) {
    setTimeout(poll, DRAIN_POLL_MS, peer);
    return;
  }
  peer.polling = false;
  peer.conn.drained();
}

export class StandardPeer implements WebSocketPeer {
  polling = false;

  constructor(
    readonly socket: WebSocket,
    readonly conn: WebSocketConn,
    /** A dialling side may close only with 1000 (or an application's 3000-4999): it says nothing more. */
    readonly dialled: boolean,
  ) {}

  sendText(text: string): boolean {
    this.socket.send(text);
    return true;
  }

  bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  close(code: number): void {
    this.socket.close(this.dialled ? 1000 : code);
  }

  // No abort in this API: the close frame goes behind what is buffered.
  terminate(): void {
    this.socket.close(this.dialled ? 1000 : 1008);
  }

  watchDrain(): void {
    if (this.polling) return;
    this.polling = true;
    setTimeout(poll, DRAIN_POLL_MS, this);
  }
}

/** Wires a standard WebSocket's events to `conn`. */
export function attachStandard(socket: WebSocket, conn: WebSocketConn, dialled: boolean, onClose?: () => void): StandardPeer {
  const peer = new StandardPeer(socket, conn, dialled);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => conn.opened(peer);
  socket.onmessage = (e) => conn.received(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
  socket.onclose = (e) => {
    conn.closed(e.code, e.reason);
    onClose?.();
  };
  return peer;
}

function endpointOfUrl(url: URL): Endpoint {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port !== "" ? Number(url.port) : url.protocol === "wss:" ? 443 : 80;
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port };
}

/** Dials `url` (ws: or wss:) with the runtime's standard WebSocket. */
export function dialWebSocket(url: string, events: SocketEvents, timeoutMs: number, options: WebSocketConnectOptions = {}): Promise<Conn> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(new Error(`'${url}' is not a URL: expected ws://HOST:PORT/PATH or wss://...`));
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    return Promise.reject(new Error(`'${url}' is not a WebSocket URL: expected ws:// or wss://`));
  }
  return new Promise<Conn>((resolve, reject) => {
    let settled = false;
    let opened = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(conn);
    };
    const opening: SocketEvents = {
      ...events,
      open(c) {
        if (settled) return c.destroy(); // after the deadline: nobody owns it
        opened = true;
        events.open?.(c);
        settle();
      },
      close(c, err) {
        if (opened) return events.close(c, err);
        settle(new Error(`cannot connect to ${url}: ${err?.message ?? "closed before it opened"}`));
      },
    };
    const conn = new WebSocketConn(endpointOfUrl(parsed), opening, CLIENT_MAX_PAUSED_BYTES, options.context);
    const socket = new WebSocket(parsed.href);
    attachStandard(socket, conn, true);
    const timer = setTimeout(() => {
      settle(new Error(`connect to ${url} timed out after ${timeoutMs} ms`));
      socket.close();
    }, timeoutMs);
  });
}
