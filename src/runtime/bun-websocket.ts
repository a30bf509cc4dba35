/**
 * WebSocket listeners on Bun: `Bun.serve` with its `websocket` handlers
 * (uWebSockets). Its `drain` event says when a connection's buffered bytes
 * went out, and a ServerWebSocket can stop reading its socket (`pause`), so
 * a paused session holds its sender back as on TCP; what was already read
 * is kept by the connection (websocket-conn.ts).
 * @module
 */
import type { Server, ServerWebSocket } from "bun";
import { answerRequest } from "./websocket-http.ts";
import { WebSocketConn, type WebSocketPeer } from "./websocket-conn.ts";
import type { Endpoint, Listener, SocketEvents, WebSocketListenOptions } from "./types.ts";

type Socket = ServerWebSocket<WebSocketConn>;

/** A ServerWebSocket as the connection's peer. */
class BunPeer implements WebSocketPeer {
  constructor(readonly ws: Socket) {}

  sendText(text: string): boolean {
    // 0 is "dropped", but also what an empty message reports.
    return this.ws.sendText(text) !== 0 || text === "";
  }

  bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }

  close(code: number): void {
    this.ws.close(code);
  }

  terminate(): void {
    this.ws.terminate();
  }

  // Bun's drain event comes by itself.
  watchDrain(): void {}

  batch<R>(fn: () => R): R {
    return this.ws.cork(fn);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }
}

const HANDLERS = {
  open(ws: Socket) {
    ws.data.opened(new BunPeer(ws));
  },
  message(ws: Socket, message: string | Uint8Array) {
    ws.data.received(message);
  },
  drain(ws: Socket) {
    ws.data.drained();
  },
  close(ws: Socket, code: number, reason: string) {
    ws.data.closed(code, reason);
  },
};

function remoteOf(server: Server<WebSocketConn>, request: Request): Endpoint {
  const ip = server.requestIP(request);
  const host = ip?.address ?? "";
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: ip?.port ?? 0 };
}

export function listenBunWebSocket(at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Listener {
  if (at.kind === "unix") throw new Error("a WebSocket listener needs a TCP address");
  const maxPaused = () => options.maxPausedBytes;
  const server: Server<WebSocketConn> = Bun.serve<WebSocketConn>({
    hostname: at.host,
    port: at.port,
    ...(options.tls === undefined ? {} : { tls: { cert: options.tls.cert, key: options.tls.key } }),
    fetch(request, srv) {
      return answerRequest(request, options, () => remoteOf(srv, request), (remote) => {
        if (srv.upgrade(request, { data: new WebSocketConn(remote, events, maxPaused) })) return undefined;
        throw new Error("missing or wrong WebSocket headers");
      });
    },
    websocket: {
      ...HANDLERS,
      maxPayloadLength: options.maxMessageBytes,
      // The connection stops sending at its own mark (websocket-conn.ts): nothing may be dropped here.
      backpressureLimit: 0,
      closeOnBackpressureLimit: false,
      // Frames are JSON text, and each side pays for compression per message: left off.
      perMessageDeflate: false,
    },
  });
  return {
    address: { kind: at.kind, host: at.host, port: server.port ?? at.port },
    async close() {
      // Stops accepting; open WebSockets stay, as a socket listener's connections do.
      // (Its promise settles once they are all closed: not waited for.)
      void server.stop(false);
    },
  };
}
