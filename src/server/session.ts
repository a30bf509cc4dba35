/**
 * One client or server connection, from its first frame to its close: the
 * scope and authentication the first frame asks for, then its messages,
 * handed to its order. Framing, the outbound queue, the slow-consumer limit
 * and the linger are the framed connection's.
 * @module
 */
import { ClosedReason } from "../connection/close-reason.ts";
import { FramedConnection } from "../connection/framed.ts";
import type { Logger } from "../log/logger.ts";
import type { FrameError } from "../protocol/frame.ts";
import { frameJson } from "../protocol/frame.ts";
import {
  CLIENT_DATA_PATHS,
  type ClientPayload,
  clientPayloadOf,
  type Credentials,
  type FirstFrame,
  parseClientPayload,
  parseFirstFrame,
} from "../protocol/messages.ts";
import { deliveryParts, type ErrorInfo, ErrorCodes, fatalMessage, statusReport } from "../protocol/reports.ts";
import { type Endpoint, formatEndpoint } from "../runtime/types.ts";
import { idOf, type MessageFlow, MessageOrder } from "./order.ts";
import type { PeerAdmission } from "./peers.ts";

export type ListenerKind = "tcp4" | "tcp6" | "unix" | "ws";

export interface SessionLimits {
  maxFrameBytes: number;
  maxJsonDepth: number;
  authTimeoutMs: number;
  maxPendingBytes: number;
  sessionWindow: number;
}

/** A login's answer; `delivery` when the gateway keeps a delivery store (PROTOCOL.md §9). */
export type AuthResult =
  | { ok: true; username: string; delivery?: { ack: boolean; reset: boolean; acked: number } }
  | { ok: false; error: ErrorInfo };

/** What a session needs from the gateway that owns it. */
export interface SessionHost {
  readonly log: Logger;
  readonly limits: SessionLimits;
  readonly flow: MessageFlow<Session>;
  /** Checks a login; `ack`: the client asked for acknowledged delivery. */
  authenticate(credentials: Credentials, session: Session, ack: boolean): AuthResult | Promise<AuthResult>;
  /**
   * Server scope (federation): whether the peer may deliver its message. The
   * header is the first frame's. Without it, every server-scope connection is
   * refused.
   */
  admitServer?(header: Record<string, unknown>, session: Session): PeerAdmission;
  /** The login succeeded: the session joins the gateway's (and the cluster's) view of who is connected; resolves once others can reach it. */
  clientJoined(session: Session): Promise<void> | undefined;
  /** The login was answered; `acked` is the user's acknowledged seq when the gateway keeps a delivery store. */
  clientReady(session: Session, acked: number | undefined): void;
  /** A status report went out (for metrics). */
  reportSent(status: "good" | "bad"): void;
  sessionClosed(session: Session, reason: ClosedReason, detail?: string): void;
}

/** What a server-scope connection's one message is known by. */
export interface ServerScope {
  /** The peer's name, or its address for an original server. */
  readonly peer: string;
  /** Server hops the message has made, so a sendServers it leads to carries one more. */
  readonly hops: number;
  /** The sender's payload id, which the status report names; none from an original server. */
  readonly replyTo: string | undefined;
}

const AUTH_SPECIAL_ID = "auth_special";

function authTimedOut(session: Session): void {
  session.fatal(
    { code: ErrorCodes.authTimeout, message: `no valid first frame within ${session.host.limits.authTimeoutMs} ms` },
    null,
    ClosedReason.authTimeout,
  );
}

export class Session extends FramedConnection {
  kind: "pending" | "client" | "server" = "pending";
  username: string | undefined;
  /** Server scope only, in one field: idle client connections are many. */
  server: ServerScope | undefined;
  readonly openedAt = Date.now();
  messagesIn = 0;
  /** Acknowledged delivery (PROTOCOL.md §9): asked for in the first frame, and the gateway keeps a store. */
  ack = false;
  /** Stored messages are being written at its login: live ones wait in #held. */
  replaying = false;
  #held: { type: string; data: string | undefined; seq: number | undefined }[] | undefined;
  /** Made with the first message that must wait or be tracked: idle sessions are many. */
  #order: MessageOrder<Session> | undefined;
  #authenticating = false;
  #draining: ErrorInfo | undefined;
  #log: Logger | undefined;
  /** Neighbours in the gateway's list of sessions (session-list.ts). */
  listPrev: Session | undefined;
  listNext: Session | undefined;

  constructor(
    readonly listener: ListenerKind,
    readonly host: SessionHost,
  ) {
    // A long frame's data stays text: the gateway passes it on without building it.
    super({ maxFrameBytes: host.limits.maxFrameBytes, keepAsText: CLIENT_DATA_PATHS, maxDepth: host.limits.maxJsonDepth });
    this.timer = setTimeout(authTimedOut, host.limits.authTimeoutMs, this);
  }

  get id(): number {
    return this.conn!.id;
  }

  get remote(): Endpoint {
    return this.conn!.remote;
  }

  /** This connection's logger (conn and remote on every line), made on first use: idle clients are many. */
  get log(): Logger {
    return (this.#log ??= this.host.log.with({ conn: this.id, remote: formatEndpoint(this.remote) }));
  }

  protected override get maxPendingBytes(): number {
    return this.host.limits.maxPendingBytes;
  }

  /** Takes deliveries as they come, without seqs: the usual session, and the delivery's fast path. */
  get plain(): boolean {
    return !this.ack && !this.replaying;
  }

  /**
   * Writes one delivered message: with `header.seq` to a session that
   * acknowledges. While stored messages are replayed, a live one (not
   * `replayed`) waits until they are written. False when it could not be
   * written (closing, or cut as a slow consumer).
   */
  deliver(type: string, data: string | undefined, seq: number | undefined, replayed = false): boolean {
    if (this.closing) return false;
    if (this.replaying && !replayed) {
      (this.#held ??= []).push({ type, data, seq });
      return true;
    }
    const [head, body, tail] = deliveryParts(type, data, this.ack ? seq : undefined);
    return this.sendJson(head, body, tail);
  }

  /**
   * The replay is done, up to seq `after`: what was held is written now,
   * but for what the replay already wrote. Returns the highest stored seq
   * among what it wrote (0 if none).
   */
  endReplay(after: number): number {
    this.replaying = false;
    const held = this.#held ?? [];
    this.#held = undefined;
    let highest = 0;
    for (const h of held) {
      if (h.seq !== undefined && h.seq <= after) continue;
      if (this.deliver(h.type, h.data, h.seq) && h.seq !== undefined) highest = Math.max(highest, h.seq);
    }
    return highest;
  }

  /** Frames can be worked on: the login is not being checked. */
  get ready(): boolean {
    return !this.#authenticating;
  }

  /** Messages accepted but not yet answered. */
  get inFlight(): number {
    return this.#order?.inFlight ?? 0;
  }

  protected override frameFailed(error: FrameError): void {
    this.fatal({ code: error.code, message: error.message }, null, ClosedReason.frameError);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    this.host.sessionClosed(this, reason, detail);
  }

  receive(value: unknown): void {
    if (this.#draining !== undefined) {
      const id = idOf(value);
      if (id !== null && this.kind === "client") this.send(statusReport(id, "bad", this.#draining));
      return;
    }
    const order = this.#order;
    if (order === undefined && !this.#authenticating) this.handle(value);
    else (this.#order ??= new MessageOrder(this, this.host.flow)).take(value);
  }

  /** Queues one message to the peer. */
  send(message: object): boolean {
    return this.sendJson(frameJson(message));
  }

  /** Sends a fatal error frame (PROTOCOL.md §6) and closes after it. */
  fatal(error: ErrorInfo, id: string | null, reason: ClosedReason): void {
    if (this.closing) return;
    this.send(fatalMessage(error, id));
    this.close(reason, `${error.code}: ${error.message}`);
  }

  /**
   * Graceful end: take no new messages, finish those in flight, then send
   * `error` as a fatal frame and close. Frames read but not yet started are
   * answered "bad" with the same error, so nothing is dropped unreported.
   */
  drain(error: ErrorInfo): void {
    if (this.closing || this.#draining) return;
    this.#draining = error;
    this.pause();
    this.#order?.refuseWaiting(error);
    if (this.inFlight === 0) this.fatal(error, null, ClosedReason.shutdown);
  }

  /** Every message in flight is answered (the order says so). */
  orderIdle(): void {
    if (this.#draining) this.fatal(this.#draining, null, ClosedReason.shutdown);
  }

  /** One frame, in its turn: the first decides the scope, then each is a message. */
  handle(value: unknown): void {
    if (this.kind === "pending") return this.#handleFirst(value);
    // A server connection carries one message (PROTOCOL.md §2); anything after it is not read.
    if (this.kind === "server") return;
    // The usual message by hand, anything else by the schema (which says
    // precisely what is wrong with a malformed one).
    let payload = clientPayloadOf(value);
    if (payload === undefined) {
      const parsed = parseClientPayload(value);
      if (!parsed.ok) return this.fatal({ code: parsed.problem.code, message: parsed.problem.message }, idOf(value), ClosedReason.malformed);
      payload = parsed.payload;
    }
    this.#dispatch(payload);
  }

  #dispatch(payload: ClientPayload): void {
    this.messagesIn++;
    (this.#order ??= new MessageOrder(this, this.host.flow)).dispatch(payload);
  }

  #handleFirst(value: unknown): void {
    const parsed = parseFirstFrame(value);
    if (!parsed.ok) {
      const { code, message } = parsed.problem;
      if (code === ErrorCodes.authFailed) return this.#refuse({ code, message });
      const reason = code === ErrorCodes.badScope ? ClosedReason.badScope : ClosedReason.malformed;
      return this.fatal({ code, message }, idOf(value), reason);
    }
    const frame = parsed.frame;
    if (frame.scope === "server") return this.#admitServer(frame, value);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.#authenticating = true;
    const done = (result: AuthResult) => {
      if (this.closing) return;
      if (!result.ok) {
        this.#authenticating = false;
        return this.#refuse(result.error);
      }
      this.kind = "client";
      this.username = result.username;
      const delivery = result.delivery;
      const report = statusReport(AUTH_SPECIAL_ID, "good") as { header: Record<string, unknown> };
      if (delivery !== undefined) {
        this.ack = delivery.ack;
        // Extension (PROTOCOL.md §9): only a client that asked is told; the original report is unchanged otherwise.
        if (delivery.ack) report.header["delivery"] = delivery.reset ? { ack: true, reset: true } : { ack: true };
        // Before joining the registry: a live message from now on waits for the replay.
        this.replaying = true;
      }
      const ready = () => {
        this.#authenticating = false;
        if (this.closing) return;
        this.send(report);
        this.host.clientReady(this, delivery?.acked);
        // Extension: the first frame's own payload is not dropped (a dummy is the customary filler).
        if (frame.payload && frame.payload.type !== "dummy") this.#dispatch(frame.payload);
        else if (frame.ignored !== undefined) this.log.debug("first frame's payload not dispatched: not a well-formed message", { detail: frame.ignored });
        this.#order?.pump();
      };
      // In a cluster the login is answered once the user is reachable from every node.
      const joined = this.host.clientJoined(this);
      if (joined === undefined) ready();
      else joined.then(ready, ready);
    };
    const failed = (err: unknown) =>
      done({ ok: false, error: { code: ErrorCodes.internal, message: `authentication failed: ${(err as Error).message}` } });
    try {
      const result = this.host.authenticate(frame.credentials, this, frame.ack);
      if (result instanceof Promise) result.then(done, failed);
      else done(result);
    } catch (err) {
      failed(err);
    }
  }

  /**
   * A server-scope first frame: admitted peers get their message dispatched
   * like a client's; the status report about it goes back, then the
   * connection closes (reply.ts).
   */
  #admitServer(frame: Extract<FirstFrame, { scope: "server" }>, value: unknown): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const header = (value as { header: Record<string, unknown> }).header;
    const id = frame.payload.id;
    const admission: PeerAdmission = this.host.admitServer
      ? this.host.admitServer(header, this)
      : {
          ok: false,
          fatal: true,
          reason: "server scope is not served",
          error: { code: ErrorCodes.authFailed, message: "this server accepts no server-scope connections" },
        };
    if (!admission.ok) {
      this.log.warn("server connection refused", { reason: admission.reason, code: admission.error.code });
      if (admission.fatal) return this.fatal(admission.error, id ?? null, ClosedReason.authFailed);
      this.kind = "server";
      if (id !== undefined) this.send(statusReport(id, "bad", admission.error));
      return this.close(ClosedReason.serverMessageDone, admission.reason);
    }
    this.kind = "server";
    this.server = { peer: admission.peer, hops: admission.hops, replyTo: id };
    this.log.info("server message accepted", {
      peer: admission.peer,
      original: admission.original || undefined,
      type: frame.payload.type,
      id,
      hops: admission.hops,
    });
    // An original server sends no id; the message still needs one inside the gateway (logs, envelope).
    this.#dispatch({ type: frame.payload.type, id: id ?? `server-${this.id}`, data: frame.payload.data });
  }

  #refuse(error: ErrorInfo): void {
    this.send(statusReport(AUTH_SPECIAL_ID, "bad", error));
    this.close(ClosedReason.authFailed, error.message);
  }
}
