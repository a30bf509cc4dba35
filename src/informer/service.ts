/**
 * The informer UNIX socket (PROTOCOL.md §7): handlers ask the gateway who is
 * connected and what it is. Connections are persistent; each request frame
 * gets one reply frame, in order. A bad request (not JSON, wrong shape,
 * unknown command) gets status "1" and the connection stays usable.
 *
 * The socket file is readable and writable by the gateway's user only: it is
 * bound inside a fresh private directory, restricted, and only then moved to
 * its path, so there is no moment at which another user could connect.
 * @module
 */
import { INFORMER_MAX_CONNECTIONS } from "../config/defaults.ts";
import type { Logger } from "../log/logger.ts";
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS, FramedConnection } from "../connection/framed.ts";
import { encodeFrame, type FrameError } from "../protocol/frame.ts";
import { ErrorCodes } from "../protocol/reports.ts";
import type { Conn, Listener, Runtime, SocketEvents } from "../runtime/types.ts";
import { bindPrivateSocket, type PrivateSocket } from "../runtime/unix-path.ts";
import { type Answer, answerInformer, type InformerReply, type InformerView } from "./commands.ts";

export interface InformerDeps {
  runtime: Runtime;
  log: Logger;
  view: InformerView;
  /** Read per connection, so a reload applies to new ones. */
  limits(): { maxFrameBytes: number; maxPendingBytes: number; maxJsonDepth: number };
  /** Hears every close of an informer connection, with its reason (for the metrics). */
  closed?(reason: ClosedReason): void;
}

export class InformerService {
  #socket: PrivateSocket<Listener> | undefined;
  #path: string | undefined;
  #conns = new Set<InformerConnection>();

  constructor(private readonly deps: InformerDeps) {}

  /** The socket path while serving. */
  get path(): string | undefined {
    return this.#path;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Binds the socket at `path` (mode 0600); a stale file from a crash is replaced, a live one refused. */
  async start(path: string): Promise<void> {
    try {
      await this.#bind(path);
    } catch (err) {
      throw new Error(`informer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async #bind(path: string): Promise<void> {
    const events: SocketEvents = { ...FRAMED_EVENTS, open: (conn) => this.#open(conn) };
    this.#socket = await bindPrivateSocket(
      path,
      (at) => this.deps.runtime.listen({ kind: "unix", path: at }, events),
      () => this.deps.log.warn("informer socket bound in place: its directory's path is too long for a private staging directory", { path }),
    );
    this.#path = path;
  }

  /** Stops accepting, closes every informer connection, removes the socket file it created. */
  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (!socket) return;
    await socket.server.close();
    for (const c of [...this.#conns]) c.close(ClosedReason.shutdown);
    await socket.remove();
  }

  #open(conn: Conn): void {
    const c = new InformerConnection(this.deps, this.#conns);
    c.attach(conn);
    if (this.#conns.size >= INFORMER_MAX_CONNECTIONS) {
      c.reply(failure(ErrorCodes.tooManyConnections, `the informer is at its limit of ${INFORMER_MAX_CONNECTIONS} connections`));
      c.close(ClosedReason.tooManyConnections);
      return;
    }
    this.#conns.add(c);
  }
}

function failure(code: string, message: string): InformerReply {
  return { status: "1", data: null, error: { code, message } };
}

/** One handler asking: a reply per request, in order; a bad request fails alone. */
class InformerConnection extends FramedConnection {
  constructor(
    private readonly deps: InformerDeps,
    private readonly all: Set<InformerConnection>,
  ) {
    const limits = deps.limits();
    // Not JSON: that request fails, the connection goes on with the next frame.
    super({
      maxFrameBytes: limits.maxFrameBytes,
      maxDepth: limits.maxJsonDepth,
      onBadBody: (err) => this.reply(failure(err.code, err.message)),
    });
    this.#maxPendingBytes = limits.maxPendingBytes;
  }

  readonly #maxPendingBytes: number;

  /** A handler that asks and never reads would grow our memory: it is cut off. */
  protected override get maxPendingBytes(): number {
    return this.#maxPendingBytes;
  }

  reply(r: InformerReply): void {
    this.sendBytes(encodeFrame(r));
  }

  /** Replies not yet sent because an earlier one waits for Redis: they go out in order. */
  #pending: Promise<void> | undefined;

  receive(value: unknown): void {
    let answered: Answer | Promise<Answer>;
    try {
      answered = answerInformer(value, this.deps.view);
    } catch (err) {
      answered = { reply: failure(ErrorCodes.internal, String(err)), quit: false };
    }
    if (!(answered instanceof Promise) && this.#pending === undefined) return this.#send(answered);
    const after = this.#pending ?? Promise.resolve();
    const next = after.then(() => answered).then((a) => this.#send(a));
    this.#pending = next;
    void next.then(() => {
      if (this.#pending === next) this.#pending = undefined;
    });
  }

  #send(answered: Answer): void {
    if (this.closing) return;
    this.reply(answered.reply);
    if (answered.quit) this.close(ClosedReason.clientRequested);
  }

  /** Only a frame above the limit fails the decoder: say so, and close rather than read it. */
  protected override frameFailed(error: FrameError): void {
    this.reply(failure(error.code, error.message));
    this.close(ClosedReason.frameError, error.message);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    this.all.delete(this);
    this.deps.closed?.(reason);
    if (reason === ClosedReason.slowConsumer) this.deps.log.warn("informer connection closed: not reading its replies", { detail });
    else this.deps.log.debug("informer connection closed", { reason, detail });
  }
}
