/**
 * The client's socket transport: TCP (optionally TLS) or a UNIX socket,
 * through `node:net` / `node:tls`, which Bun, Deno and Node all have, with
 * the length-prefixed framing of PROTOCOL.md §1.
 * @module
 */
import { connect, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { encodeJsonFrame, FrameDecoder } from "../protocol/frame.ts";
import { BesterClientError, type ClientTarget } from "./client-api.ts";
import type { ClientWire, OpenWire } from "./client-session.ts";

/** Opens `target` with TLS when `tls` is given (TCP only). */
export function socketWire(target: ClientTarget, tls: { ca?: string } | undefined, maxFrameBytes: number, where: string): OpenWire {
  return (events) => {
    const socket: Socket =
      "path" in target
        ? connect(target.path)
        : tls !== undefined
          ? connectTls({ host: target.host, port: target.port, ...(tls.ca === undefined ? {} : { ca: tls.ca }) })
          : connect({ host: target.host, port: target.port });
    const decoder = new FrameDecoder(maxFrameBytes, (value) => events.frame(value));
    const wire: ClientWire = {
      send: (json) => void socket.write(encodeJsonFrame(json)),
      end: () => void socket.end(),
      destroy: () => void socket.destroy(),
    };
    return new Promise<ClientWire>((resolve, reject) => {
      let up = false;
      // Over TLS, connected means the handshake verified the server.
      socket.once(tls !== undefined && !("path" in target) ? "secureConnect" : "connect", () => {
        up = true;
        // Small frames, latency matters: do not let Nagle hold them back.
        if (!("path" in target)) socket.setNoDelay(true);
        resolve(wire);
      });
      socket.on("data", (chunk: Uint8Array) => {
        const err = decoder.push(chunk);
        if (err !== undefined) {
          events.failed(new BesterClientError("protocol_error", `bad frame from the server: ${err.message}`, { cause: err }));
          socket.destroy();
        }
      });
      socket.on("error", (err) => {
        if (!up) reject(new BesterClientError("connect_failed", `cannot connect to ${where}: ${err.message}`, { cause: err }));
        else events.failed(err);
      });
      socket.on("close", () => {
        if (up) events.closed();
      });
    });
  };
}
