/**
 * The client SDK for browsers: {@link connectClient} over the gateway's
 * WebSocket listener, with the same API as over TCP (PROTOCOL.md §10).
 * `npm run build` bundles it into `dist/bester-client.js`, an ES module with
 * no Node or Bun built-ins; the WebSocket listener serves the same file at
 * `/bester-client.js`.
 *
 * @example
 * ```html
 * <script type="module">
 *   import { connectClient } from "/bester-client.js";
 *   const client = await connectClient({ url: "ws://127.0.0.1:2222/bester", username: "alice", password: "pw" });
 *   await client.send("chat", { to: "bob", body: "hi from a browser" });
 *   for await (const m of client.messages()) console.log(m.type, m.data);
 * </script>
 * ```
 *
 * @module
 */
import { type BesterClient, BesterClientError, type ConnectClientOptions } from "./client-api.ts";
import { connectWith, maxFrameBytesOf } from "./client-session.ts";
import { webSocketWire } from "./client-websocket.ts";

export {
  type BesterClient,
  BesterClientError,
  type ClientClosed,
  type ConnectClientOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReceivedMessage,
  type StatusReport,
} from "./client-api.ts";

/**
 * Connects to `options.url` (`ws://` or `wss://`) and logs in.
 *
 * @param options the WebSocket URL, who, and how long to wait
 * @returns a logged-in client, once the server reported `auth_special` good
 * @throws {BesterClientError} `bad_address` (no url, or a `target`: a browser opens no sockets),
 *   `connect_failed`, `timeout`, or the server's code for a refused login
 * @example
 * ```ts
 * const client = await connectClient({ url: `ws://${location.host}/bester`, username: "alice", password: "pw" });
 * ```
 */
export function connectClient(options: ConnectClientOptions): Promise<BesterClient> {
  if (options.url === undefined || options.target !== undefined) {
    return Promise.reject(new BesterClientError("bad_address", "in a browser, connect with url (ws:// or wss://): a browser opens no TCP or UNIX sockets"));
  }
  return connectWith(webSocketWire(options.url, maxFrameBytesOf(options)), options.url, options);
}
