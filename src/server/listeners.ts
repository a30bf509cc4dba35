/**
 * Opens the listeners `network.types` asks for. If one cannot bind, the ones
 * already open are closed again and the error names the listener.
 * @module
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { readNamedFile } from "../config/named-file.ts";
import type { TlsListenerConfig } from "../config/schema.ts";
import {
  type Endpoint,
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
  return { kind, host: block.address, port: block.port };
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

/** Opens `kind`'s listener as `network` describes it (with TLS if it says so; `tls`, if given, as just read from its files). */
export async function openListener(
  runtime: Runtime,
  kind: ListenerKind,
  network: NetworkConfig,
  events: SocketEvents,
  tls = readListenerTls(kind, network),
): Promise<OpenListener> {
  const listener = await runtime.listen(endpointFor(kind, network), events, tls ? { tls: { cert: tls.cert, key: tls.key } } : {});
  return tls ? { kind, listener, tls } : { kind, listener };
}

export async function openListeners(
  runtime: Runtime,
  network: NetworkConfig,
  events: (kind: ListenerKind) => SocketEvents,
): Promise<OpenListener[]> {
  const open: OpenListener[] = [];
  for (const kind of network.types) {
    const at = endpointFor(kind, network);
    try {
      open.push(await openListener(runtime, kind, network, events(kind)));
    } catch (err) {
      await Promise.allSettled(open.map((o) => o.listener.close()));
      const cause = err instanceof ListenError ? err : new ListenError("other", `cannot listen on ${formatEndpoint(at)}: ${err}`);
      throw new ListenerStartError(kind, cause);
    }
  }
  return open;
}
