/**
 * The client's WebSocket transport (PROTOCOL.md §10): the platform's
 * standard `WebSocket`, as browsers, Bun, Deno and Node 22+ all have it.
 * Each message is one frame's JSON text; nothing here needs a built-in
 * module, so it goes into the browser build as it is.
 * @module
 */
import { BesterClientError } from "./client-api.ts";
import type { ClientWire, OpenWire } from "./client-session.ts";

/** Opens `url` (ws: or wss:); messages longer than `maxFrameBytes` (in UTF-16 units, a lower bound of their bytes) end the connection. */
export function webSocketWire(url: string, maxFrameBytes: number): OpenWire {
  return (events) => {
    let socket: WebSocket;
    try {
      socket = new WebSocket(url);
    } catch (err) {
      return Promise.reject(new BesterClientError("bad_address", `'${url}' is not a WebSocket URL: ${(err as Error).message}`, { cause: err }));
    }
    socket.binaryType = "arraybuffer";
    let ended = false;
    const end = (code?: number) => {
      if (ended) return;
      ended = true;
      events.closed(code);
    };
    const wire: ClientWire = {
      send(json) {
        if (socket.readyState === WebSocket.OPEN) socket.send(json);
      },
      end: () => socket.close(1000),
      // The standard API has no abort: close, and count the connection gone now.
      destroy: () => {
        socket.close(1000);
        end();
      },
    };
    return new Promise<ClientWire>((resolve, reject) => {
      let up = false;
      socket.onopen = () => {
        up = true;
        resolve(wire);
      };
      socket.onmessage = (e) => {
        const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
        if (text.length > maxFrameBytes) {
          events.failed(new BesterClientError("protocol_error", `bad frame from the server: ${text.length} characters, more than the ${maxFrameBytes} bytes allowed`));
          return wire.destroy();
        }
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (err) {
          events.failed(new BesterClientError("protocol_error", `bad frame from the server: not JSON (${(err as Error).message})`));
          return wire.destroy();
        }
        events.frame(value);
      };
      socket.onclose = (e) => {
        // A browser tells a script nothing about why a WebSocket failed to open (a refused origin's 403 included).
        if (!up) return reject(new BesterClientError("connect_failed", `cannot connect to ${url}: the WebSocket closed before it opened (code ${e.code})`));
        end(e.code);
      };
    });
  };
}
