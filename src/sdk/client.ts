/**
 * The client SDK: connect to a Bester gateway (or any Bester server), log in,
 * send messages and receive what handlers deliver (PROTOCOL.md §2-6), over
 * TCP, a UNIX socket or a WebSocket (§10).
 *
 * Uses only `node:` built-ins and the standard `WebSocket`, so it runs on
 * Bun, Deno and Node alike; in a browser, the same API comes from the
 * browser build (`dist/bester-client.js`, or `/bester-client.js` on the
 * gateway's WebSocket listener), over WebSocket only.
 *
 * @example
 * ```ts
 * import { connectClient } from "bester/sdk/client";
 *
 * const client = await connectClient({ target: { host: "127.0.0.1", port: 2220 }, username: "alice", password: "pw" });
 * const report = await client.send("chat", { to: ["bob"], body: "hi" });
 * if (report.status === "bad") console.error(report.error?.message);
 * for await (const { type, data } of client.messages()) console.log(type, data);
 * ```
 *
 * @module
 */
import { type BesterClient, BesterClientError, type ClientTarget, type ConnectClientOptions } from "./client-api.ts";
import { connectWith, maxFrameBytesOf } from "./client-session.ts";
import { socketWire } from "./client-socket.ts";
import { webSocketWire } from "./client-websocket.ts";

export {
  type BesterClient,
  BesterClientError,
  type ClientClosed,
  type ClientTarget,
  type ConnectClientOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReceivedMessage,
  type StatusReport,
} from "./client-api.ts";

/**
 * Reads an address as the command line writes it: `127.0.0.1:2220`,
 * `localhost:2220`, `[::1]:2221` or `unix:/path/to.sock`.
 *
 * @param text the address
 * @returns the target for {@link connectClient}
 * @throws {BesterClientError} code `bad_address`, naming the accepted forms
 * @example
 * ```ts
 * parseTarget("[::1]:2221"); // { host: "::1", port: 2221 }
 * parseTarget("unix:/run/bester/bester.sock"); // { path: "/run/bester/bester.sock" }
 * ```
 */
export function parseTarget(text: string): ClientTarget {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (path !== "") return { path };
  } else {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
    const port = m ? Number(m[3]) : NaN;
    if (m && port >= 1 && port <= 65535) return { host: m[1] ?? m[2]!, port };
  }
  throw new BesterClientError(
    "bad_address",
    `'${text}' is not an address: expected HOST:PORT (127.0.0.1:2220), [IPV6]:PORT ([::1]:2221) or unix:PATH`,
  );
}

/**
 * Formats a target as {@link parseTarget} reads it.
 *
 * @param target a TCP or UNIX target
 * @returns `host:port`, `[ipv6]:port` or `unix:path`
 * @example
 * ```ts
 * formatTarget({ host: "::1", port: 2221 }); // "[::1]:2221"
 * ```
 */
export function formatTarget(target: ClientTarget): string {
  if ("path" in target) return `unix:${target.path}`;
  return target.host.includes(":") ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/**
 * Connects and logs in.
 *
 * @param options where (`target`, or `url` for a WebSocket), who, and how long to wait
 * @returns a logged-in client, once the server reported `auth_special` good
 * @throws {BesterClientError} `connect_failed` (with the socket error), `timeout`,
 *   `bad_address` (neither or both of `target` and `url`), or the server's code
 *   for a refused login (e.g. `auth_failed`) with its message
 * @example
 * ```ts
 * import { connectClient } from "bester/sdk/client";
 *
 * const client = await connectClient({ target: { path: "/run/bester/bester.sock" }, username: "alice", password: "pw" });
 * console.log(await client.send("dummy")); // { id: "m-1", status: "good" }
 * await client.close();
 *
 * const browserLike = await connectClient({ url: "ws://127.0.0.1:2222/bester", username: "bob", password: "pw" });
 * ```
 */
export function connectClient(options: ConnectClientOptions): Promise<BesterClient> {
  const { target, url } = options;
  if ((target === undefined) === (url === undefined)) {
    return Promise.reject(new BesterClientError("bad_address", "give either target (TCP or UNIX) or url (ws:// or wss://), not both or neither"));
  }
  if (url !== undefined) return connectWith(webSocketWire(url, maxFrameBytesOf(options)), url, options);
  const where = formatTarget(target!);
  const tls = "path" in target! ? undefined : options.tls;
  return connectWith(socketWire(target!, tls, maxFrameBytesOf(options), where), where, options);
}
