/**
 * The handler SDK served on the gateway's own framed connections and
 * runtime sockets (`sockets: "runtime"`), which on Bun cost less per request
 * than node:net's streams. The SDK reaches it by a dynamic import only when
 * asked, so a handler on Node never loads the runtime layer.
 * @module
 */
import type { FrameError } from "../protocol/frame.ts";
import { loadRuntime } from "../runtime/index.ts";
import { ListenError, type Runtime, type SocketEvents } from "../runtime/types.ts";
import { HandlerStartError } from "./errors.ts";
import { HANDLER_SOCKET_MODE, Served, type Service, type Wire } from "./served.ts";
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS, FramedConnection } from "../connection/framed.ts";

/** One gateway connection: the framed connection decodes and queues, the SDK orders the answers. */
class ServedConnection extends FramedConnection implements Wire {
  readonly served: Served;

  constructor(readonly service: Service) {
    super({ maxFrameBytes: service.maxFrameBytes });
    this.served = new Served(this, service);
  }

  receive(value: unknown): void {
    this.served.request(value);
  }

  protected override frameFailed(error: FrameError): void {
    this.served.unreadable(error.message);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    if (reason === ClosedReason.socketError) this.service.log(`gateway connection error: ${detail}`);
    this.served.closed();
  }

  send(json: string): void {
    this.sendJson(json);
  }

  /** The turn's flush writes them. */
  answered(): void {}

  finish(): void {
    this.close(ClosedReason.exchangeDone);
  }
}

/** The runtime this process runs on, when it is one bester has an adapter for. */
export async function currentRuntime(): Promise<Runtime | undefined> {
  try {
    return await loadRuntime();
  } catch {
    return undefined;
  }
}

/** Listens through `runtime`'s sockets; resolves to its close. */
export async function listenOnRuntime(runtime: Runtime, socketPath: string, service: Service): Promise<() => Promise<void>> {
  const events: SocketEvents = {
    ...FRAMED_EVENTS,
    open(conn) {
      new ServedConnection(service).attach(conn);
    },
    // A gateway that shuts its side after the request still gets the answer.
    end(conn) {
      (conn.context as ServedConnection).served.end();
    },
  };
  try {
    const listener = await runtime.listen({ kind: "unix", path: socketPath, mode: HANDLER_SOCKET_MODE }, events);
    return () => listener.close();
  } catch (err) {
    const code = err instanceof ListenError && err.code === "in_use" ? "in_use" : "listen_failed";
    throw new HandlerStartError(code, (err as Error).message, { cause: err });
  }
}
