/**
 * WebSocket listeners on Deno: `Deno.serve` and `Deno.upgradeWebSocket`.
 * Quirks of Deno 2.9 this works around:
 *
 * - The socket an upgrade gives is a standard WebSocket: no drain event (a
 *   stopped write polls `bufferedAmount`), and it cannot stop reading, so a
 *   paused connection only holds what arrives (websocket-standard.ts,
 *   websocket-conn.ts, up to a bound).
 * - `shutdown()` closes every WebSocket the server upgraded (1001). A socket
 *   listener's open connections stay when it closes, so this one, closed,
 *   refuses new requests (503) and shuts the server down once its last
 *   WebSocket has closed; until then its port stays bound.
 * - The largest message it reads is fixed (64 MiB); a larger one closes the
 *   connection without a close code.
 * - There is no abort: a connection cut as a slow consumer sends its close
 *   frame behind what is buffered, and Deno's ping timeout (30 s) ends a
 *   peer that reads nothing.
 * @module
 */
import { answerRequest } from "./websocket-http.ts";
import { WebSocketConn } from "./websocket-conn.ts";
import { attachStandard } from "./websocket-standard.ts";
import type { Endpoint, Listener, SocketEvents, WebSocketListenOptions } from "./types.ts";

/** The members of Deno's namespace this file uses, declared structurally as deno-api.ts does. */
interface DenoWebSocketApi {
  serve(
    options: { hostname: string; port: number; cert?: string; key?: string; onListen?: (addr: { port?: number }) => void },
    handler: (request: Request, info: { remoteAddr: { hostname?: string; port?: number } }) => Response | Promise<Response>,
  ): { readonly addr: { port?: number }; shutdown(): Promise<void> };
  upgradeWebSocket(request: Request): { socket: WebSocket; response: Response };
}

function endpointOf(addr: { hostname?: string; port?: number }): Endpoint {
  const host = addr.hostname ?? "";
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: addr.port ?? 0 };
}

export function listenDenoWebSocket(at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Listener {
  if (at.kind === "unix") throw new Error("a WebSocket listener needs a TCP address");
  const deno = (globalThis as unknown as { Deno: DenoWebSocketApi }).Deno;
  const maxPaused = () => options.maxPausedBytes;
  let open = 0;
  let closing = false;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    void server.shutdown();
  };
  const server = deno.serve(
    {
      hostname: at.host,
      port: at.port,
      ...(options.tls === undefined ? {} : { cert: options.tls.cert, key: options.tls.key }),
      // Given, so Deno does not print its own "Listening on" line.
      onListen() {},
    },
    (request, info) => {
      if (closing) return new Response("this listener is closed\n", { status: 503 });
      const answer = answerRequest(request, options, () => endpointOf(info.remoteAddr), (remote) => {
        const { socket, response } = deno.upgradeWebSocket(request);
        open++;
        attachStandard(socket, new WebSocketConn(remote, events, maxPaused), () => {
          if (--open === 0 && closing) stop();
        });
        return response;
      });
      return answer ?? new Response("upgrade not answered\n", { status: 500 });
    },
  );
  return {
    address: { kind: at.kind, host: at.host, port: server.addr.port ?? at.port },
    async close() {
      closing = true;
      if (open === 0) stop();
    },
  };
}
