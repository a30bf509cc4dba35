/**
 * The HTTP side of a WebSocket listener, the same on every runtime: which
 * request is an upgrade to take, which is refused and how, and which goes
 * to the listener's other pages.
 * @module
 */
import { createHash } from "node:crypto";
import type { Endpoint, WebSocketListenOptions } from "./types.ts";

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/** RFC 6455 §1.3: what a server appends to the client's key before hashing it. */
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** An upgrade request or its answer is a few hundred bytes; a head this long is not one. */
export const MAX_HANDSHAKE_BYTES = 16 * 1024;

/** The Sec-WebSocket-Accept that answers `key`. */
export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/**
 * Answers one request: the owner's `fetch` for every path but the upgrade
 * path; there, 426 for a request that is no upgrade, 403 for one `admit`
 * refuses, else `upgrade` (undefined when the runtime answers the upgrade
 * itself; a throw means the request was no valid upgrade: 400).
 */
export function answerRequest(
  request: Request,
  options: WebSocketListenOptions,
  remoteOf: () => Endpoint,
  upgrade: (remote: Endpoint) => Response | undefined,
): Response | Promise<Response> | undefined {
  const path = new URL(request.url).pathname;
  if (path !== options.path) {
    return options.fetch ? options.fetch(request) : new Response("not found\n", { status: 404, headers: TEXT });
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response(`${path} takes WebSocket connections (RFC 6455) that speak the Bester protocol\n`, {
      status: 426,
      headers: { ...TEXT, Upgrade: "websocket" },
    });
  }
  const remote = remoteOf();
  const refusal = options.admit?.(request, remote);
  if (refusal !== undefined) return new Response(`${refusal}\n`, { status: 403, headers: TEXT });
  try {
    return upgrade(remote);
  } catch (err) {
    return new Response(`not a valid WebSocket upgrade: ${(err as Error).message}\n`, { status: 400, headers: TEXT });
  }
}
