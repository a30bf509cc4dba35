/**
 * Opens the listeners `network.types` asks for. If one cannot bind, the ones
 * already open are closed again and the error names the listener.
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readNamedFile } from "../config/named-file.ts";
import { WEBSOCKET_MESSAGE_LIMIT_FACTOR } from "../config/defaults.ts";
import type { TlsListenerConfig, WsListenerConfig } from "../config/types.ts";
import {
  type Endpoint,
  type FetchHandler,
  formatEndpoint,
  ListenError,
  type Listener,
  type Runtime,
  type SocketEvents,
  type TlsServerOptions,
} from "../runtime/types.ts";
import type { ListenerKind } from "./session.ts";

export interface NetworkConfig {
  types: ListenerKind[];
  unix?: { address: string; mode: number };
  tcp4?: { address: string; port: number; tls?: TlsListenerConfig };
  tcp6?: { address: string; port: number; tls?: TlsListenerConfig };
  ws?: WsListenerConfig;
}

/** What the WebSocket listener needs from the gateway beyond its config block. */
export interface WebSocketSide {
  /** Checks an upgrade before it is taken (the browser's Origin); undefined takes it, else the reason for the 403. */
  admit(request: Request, remote: Endpoint): string | undefined;
  /** The port's other HTTP requests: the web chat page and the browser SDK. */
  fetch: FetchHandler;
  /** limits.maxFrameBytes when the listener opens: sets how large a message the runtime reads. */
  maxFrameBytes: number;
  /** What a paused WebSocket may hold (limits.maxPendingBytes, followed on reload). */
  readonly maxPausedBytes: number;
}

/** A TLS listener's certificate and key as read from its files, and when the certificate ends. */
export interface ListenerTls extends TlsServerOptions {
  expires: Date;
}

export interface OpenListener {
  kind: ListenerKind;
  listener: Listener;
  /** The certificate and key it was opened with (a TLS listener): a reload compares the files with them. */
  tls?: ListenerTls;
}

export class ListenerStartError extends Error {
  override name = "ListenerStartError";
  constructor(
    readonly kind: ListenerKind,
    readonly listenError: ListenError,
  ) {
    super(`${kind} listener: ${listenError.message}`);
  }
}

export function endpointFor(kind: ListenerKind, network: NetworkConfig): Endpoint {
  if (kind === "unix") return { kind, path: network.unix!.address, mode: network.unix!.mode };
  const block = network[kind]!;
  if (kind === "ws") return { kind: block.address.includes(":") ? "tcp6" : "tcp4", host: block.address, port: block.port };
  return { kind, host: block.address, port: block.port };
}

/** Where the WebSocket listener bound at `address` is reached: the URL a client dials (`ws://127.0.0.1:2222/bester`) and its web chat's. */
export function webSocketUrls(ws: WsListenerConfig, address: Endpoint): { url: string; chat: string } {
  const host = address.kind === "unix" ? "localhost" : address.kind === "tcp6" ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
  const secure = ws.tls !== undefined ? "s" : "";
  return { url: `ws${secure}://${host}${ws.path}`, chat: `http${secure}://${host}/chat` };
}

/**
 * The certificate and key of `kind`'s listener, read from their files now;
 * undefined for a plain one. Throws a ListenError naming the file it cannot read.
 */
export function readListenerTls(kind: ListenerKind, network: NetworkConfig): ListenerTls | undefined {
  const tls = kind === "unix" ? undefined : network[kind]?.tls;
  if (tls === undefined) return undefined;
  const read = (key: "certFile" | "keyFile") => {
    try {
      return readNamedFile(`network.${kind}.tls.${key}`, tls[key]);
    } catch (err) {
      throw new ListenError("other", (err as Error).message);
    }
  };
  const cert = read("certFile");
  const key = read("keyFile");
  // Checked here, where the message can name the file: a runtime's TLS layer says less, and a reload
  // must find a bad file before it lets go of the working listener.
  const problem = (text: string) => new ListenError("other", `network.${kind}.tls: ${text}`);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw problem(`certFile ${tls.certFile} holds no PEM certificate (${(err as Error).message})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw problem(`keyFile ${tls.keyFile} holds no PEM private key (${(err as Error).message})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) throw problem(`keyFile ${tls.keyFile} is not the key of the certificate in ${tls.certFile}`);
  return { cert, key, expires: new Date(certificate.validTo) };
}

/**
 * Opens `kind`'s listener as `network` describes it (with TLS if it says so;
 * `tls`, if given, as just read from its files). The WebSocket listener
 * needs `web`.
 */
export async function openListener(
  runtime: Runtime,
  kind: ListenerKind,
  network: NetworkConfig,
  events: SocketEvents,
  tls = readListenerTls(kind, network),
  web?: WebSocketSide,
): Promise<OpenListener> {
  const at = endpointFor(kind, network);
  const keys = tls ? { tls: { cert: tls.cert, key: tls.key } } : {};
  let listener: Listener;
  if (kind === "ws") {
    if (web === undefined) throw new ListenError("other", "the WebSocket listener was opened without its HTTP side");
    listener = await runtime.listenWebSocket(at, events, {
      path: network.ws!.path,
      ...keys,
      admit: (request, remote) => web.admit(request, remote),
      fetch: web.fetch,
      maxMessageBytes: web.maxFrameBytes * WEBSOCKET_MESSAGE_LIMIT_FACTOR,
      get maxPausedBytes() {
        return web.maxPausedBytes;
      },
    });
  } else listener = await runtime.listen(at, events, keys);
  return tls ? { kind, listener, tls } : { kind, listener };
}

export async function openListeners(
  runtime: Runtime,
  network: NetworkConfig,
  events: (kind: ListenerKind) => SocketEvents,
  web?: WebSocketSide,
): Promise<OpenListener[]> {
  const open: OpenListener[] = [];
  for (const kind of network.types) {
    const at = endpointFor(kind, network);
    try {
      open.push(await openListener(runtime, kind, network, events(kind), undefined, web));
    } catch (err) {
      await Promise.allSettled(open.map((o) => o.listener.close()));
      const cause = err instanceof ListenError ? err : new ListenError("other", `cannot listen on ${formatEndpoint(at)}: ${err}`);
      throw new ListenerStartError(kind, cause);
    }
  }
  return open;
}
