/**
 * Opens the listeners `network.types` asks for. If one cannot bind, the ones
 * already open are closed again and the error names the listener.
 * @module
 */
import { type Endpoint, formatEndpoint, ListenError, type Listener, type Runtime, type SocketEvents } from "../runtime/types.ts";
import type { ListenerKind } from "./session.ts";

export interface NetworkConfig {
  types: ListenerKind[];
  unix?: { address: string };
  tcp4?: { address: string; port: number };
  tcp6?: { address: string; port: number };
}

export interface OpenListener {
  kind: ListenerKind;
  listener: Listener;
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
  if (kind === "unix") return { kind, path: network.unix!.address };
  const block = network[kind]!;
  return { kind, host: block.address, port: block.port };
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
      open.push({ kind, listener: await runtime.listen(at, events(kind)) });
    } catch (err) {
      await Promise.allSettled(open.map((o) => o.listener.close()));
      const cause = err instanceof ListenError ? err : new ListenError("other", `cannot listen on ${formatEndpoint(at)}: ${err}`);
      throw new ListenerStartError(kind, cause);
    }
  }
  return open;
}
