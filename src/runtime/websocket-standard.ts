/**
 * The standard (WHATWG) `WebSocket` as a connection's peer: what Deno's
 * server hands over after an upgrade. It has no drain event, so a stopped
 * write polls `bufferedAmount` until it is low again; and it cannot stop
 * reading.
 * @module
 */
import { HIGH_WATER_BYTES, WebSocketConn, type WebSocketPeer } from "./websocket-conn.ts";

/** How often a stopped write looks whether the runtime has written out what it holds. */
const DRAIN_POLL_MS = 1;
/** A stopped write goes on once the bytes held have fallen to this. */
const LOW_WATER_BYTES = HIGH_WATER_BYTES / 2;

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
  ) {}

  sendText(text: string): boolean {
    this.socket.send(text);
    return true;
  }

  bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  close(code: number): void {
    this.socket.close(code);
  }

  // No abort in this API: the close frame goes behind what is buffered.
  terminate(): void {
    this.socket.close(1008);
  }

  watchDrain(): void {
    if (this.polling) return;
    this.polling = true;
    setTimeout(poll, DRAIN_POLL_MS, this);
  }
}

/** Wires a standard WebSocket's events to `conn`. */
export function attachStandard(socket: WebSocket, conn: WebSocketConn, onClose?: () => void): StandardPeer {
  const peer = new StandardPeer(socket, conn);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => conn.opened(peer);
  socket.onmessage = (e) => conn.received(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
  socket.onclose = (e) => {
    conn.closed(e.code, e.reason);
    onClose?.();
  };
  return peer;
}
