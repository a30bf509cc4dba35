/**
 * One connection, from its first frame to its close: scope, authentication,
 * in-order processing of its messages, and its outbound limit.
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { FrameDecoder, frameJson } from "../protocol/frame.ts";
import {
  CLIENT_DATA_PATHS,
  type ClientPayload,
  clientPayloadOf,
  type Credentials,
  type FirstFrame,
  parseClientPayload,
  parseFirstFrame,
} from "../protocol/messages.ts";
import { type ErrorInfo, ErrorCodes, fatalMessage, GOOD_REPORT_HEAD, GOOD_REPORT_TAIL, statusReport } from "../protocol/reports.ts";
import { type Conn, formatEndpoint } from "../runtime/types.ts";
import { ClosedReason } from "./close-reason.ts";
import type { PeerAdmission } from "./peers.ts";

export type ListenerKind = "tcp4" | "tcp6" | "unix";

export interface SessionLimits {
  maxFrameBytes: number;
  maxJsonDepth: number;
  authTimeoutMs: number;
  maxPendingBytes: number;
  sessionWindow: number;
}

/**
 * What a routed message produced: frames for the originator, and whether to
 * close after them. `deferred` is work to do once every earlier message of the
 * session is finished (delivering a handler's answer), so what one client
 * sends is carried out in the order it was sent.
 */
export interface RouteResult {
  /** Frames to send, in order; a string is a frame's JSON text, already serialised. */
  frames: (object | string)[];
  /** Then a plain good status report for the message (written from parts, no object). */
  good?: boolean;
  close?: boolean;
  deferred?: () => RouteResult | Promise<RouteResult>;
}

/**
 * Where a routed message's outcome goes: `settle` it once (later calls are
 * ignored). An object, not a callback: it is the message's own slot in its
 * session, so routing a message allocates no closure for it.
 */
export interface Outcome {
  settle(result: RouteResult): void;
}

export type AuthResult = { ok: true; username: string } | { ok: false; error: ErrorInfo };

/** What a session needs from the gateway that owns it. */
export interface SessionHost {
  readonly log: Logger;
  readonly limits: SessionLimits;
  authenticate(credentials: Credentials, session: Session): AuthResult | Promise<AuthResult>;
  /**
   * Server scope (federation): whether the peer may deliver its message. The
   * header is the first frame's. Without it, every server-scope connection is
   * refused.
   */
  admitServer?(header: Record<string, unknown>, session: Session): PeerAdmission;
  /** Settles `outcome` once with what answers `payload`, at once or later. */
  route(session: Session, payload: ClientPayload, outcome: Outcome): void;
  clientReady(session: Session): void;
  /** A status report went out (for metrics). */
  reportSent?(status: "good" | "bad"): void;
  sessionClosed(session: Session, reason: ClosedReason, detail?: string): void;
}

/** A message in flight in its session (made by Session.#Slot). */
interface Slot extends Outcome {
  readonly id: string;
  done: boolean;
  result: RouteResult;
}

const AUTH_SPECIAL_ID = "auth_special";
/** How long a closing connection may take to write what is queued before it is cut. */
const LINGER_MS = 5000;
/** An empty frame list for results that send none (shared: never modified). */
export const NO_FRAMES = Object.freeze([]) as unknown as (object | string)[];

/** A slot's result until its message is settled (shared: never modified). */
const PENDING: RouteResult = Object.freeze({ frames: NO_FRAMES });

/** Never pushed to: replaced by a fresh array on first use. */
const NONE: unknown[] = [];

export class Session {
  kind: "pending" | "client" | "server" = "pending";
  username: string | undefined;
  /** Server scope: the peer's name, or its address for an original server. */
  peer: string | undefined;
  /**
   * Server hops the message on this connection has made (0 for a client), so a
   * sendServers it leads to carries one more.
   */
  hops = 0;
  /** Server scope: the sender's payload id, which the status report names; none from an original server. */
  #replyTo: string | undefined;
  readonly openedAt = Date.now();
  messagesIn = 0;
  #decoder: FrameDecoder;
  // Idle sessions are many: both queues share one empty array until used.
  #backlog: unknown[] = NONE;
  #backlogHead = 0;
  #slots: Slot[] = NONE as Slot[];
  #authenticating = false;
  #paused = false;
  #closing = false;
  #draining: ErrorInfo | undefined;
  #gone = false;
  #closeReason: ClosedReason | undefined;
  #closeDetail: string | undefined;
  /** Until the first frame, the auth timeout; once closing, the linger limit (one field: idle sessions are many). */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #log: Logger | undefined;

  /** Drops the timer itself too: a cleared timer object kept in a field stays alive. */
  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** This connection's logger (conn and remote on every line), made on first use: idle clients are many. */
  get log(): Logger {
    return (this.#log ??= this.host.log.with({ conn: this.conn.id, remote: formatEndpoint(this.conn.remote) }));
  }

  constructor(
    readonly conn: Conn,
    readonly listener: ListenerKind,
    readonly host: SessionHost,
  ) {
    // The session itself is the decoder's owner, not a closure over it: one
    // function and one scope fewer per idle connection.
    // A long frame's data stays text: the gateway passes it on without building it.
    this.#decoder = new FrameDecoder(host.limits.maxFrameBytes, Session.#frameOf, {
      owner: this,
      keepAsText: CLIENT_DATA_PATHS,
      maxDepth: host.limits.maxJsonDepth,
    });
    this.#timer = setTimeout(() => {
      this.fatal(
        { code: ErrorCodes.authTimeout, message: `no valid first frame within ${host.limits.authTimeoutMs} ms` },
        null,
        ClosedReason.authTimeout,
      );
    }, host.limits.authTimeoutMs);
  }

  static #frameOf(value: unknown, _index: number, owner: unknown): void {
    (owner as Session).#onFrame(value);
  }

  /**
   * A message from its dispatch until its frames are sent: its place in the
   * session's order and the outcome its route settles. Declared in here so
   * that settling reaches the session's private state.
   */
  static readonly #Slot = class implements Slot {
    done = false;
    result: RouteResult = PENDING;
    /** Once only, even if a route settles and then throws. */
    #settled = false;

    constructor(
      readonly session: Session,
      readonly id: string,
    ) {}

    settle(result: RouteResult): void {
      if (this.#settled) return;
      this.#settled = true;
      this.session.#settle(this, result);
    }
  };

  get id(): number {
    return this.conn.id;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Messages accepted but not yet answered. */
  get inFlight(): number {
    return this.#slots.length;
  }

  onData(chunk: Uint8Array): void {
    if (this.#closing) return;
    const err = this.#decoder.push(chunk);
    if (err) this.fatal({ code: err.code, message: err.message }, null, ClosedReason.frameError);
  }

  /** The socket closed, for whatever reason; called once. */
  onClose(err?: Error): void {
    this.#gone = true;
    this.#stopTimer();
    const reason = this.#closeReason ?? (err ? ClosedReason.socketError : ClosedReason.peerClosed);
    this.#closing = true;
    this.host.sessionClosed(this, reason, this.#closeDetail ?? err?.message);
  }

  /** Queues one message to the peer. */
  send(message: object): boolean {
    return this.sendJson(frameJson(message));
  }

  /**
   * Queues one frame of already-serialised JSON, given whole or as up to
   * three parts (encoded without joining them); false like {@link sendBytes}.
   */
  sendJson(json: string, more?: string, last?: string): boolean {
    if (this.#closeReason === ClosedReason.slowConsumer || this.#gone) return false;
    this.conn.writeFrame(json, more, last);
    return this.#checkBacklog();
  }

  /**
   * Queues one encoded frame; false if it could not be queued. A peer that
   * lets more than the limit pile up is cut off as a slow consumer.
   */
  sendBytes(frame: Uint8Array): boolean {
    if (this.#closeReason === ClosedReason.slowConsumer || this.#gone) return false;
    this.conn.write(frame);
    return this.#checkBacklog();
  }

  #sendGoodReport(id: string): boolean {
    return this.sendJson(GOOD_REPORT_HEAD, JSON.stringify(id), GOOD_REPORT_TAIL);
  }

  #checkBacklog(): boolean {
    if (this.conn.pendingBytes > this.host.limits.maxPendingBytes) {
      // A fatal frame would only queue behind the backlog, so close at once.
      this.#closeReason = ClosedReason.slowConsumer;
      this.#closeDetail = `${this.conn.pendingBytes} bytes pending, limit ${this.host.limits.maxPendingBytes}`;
      this.#closing = true;
      this.conn.destroy();
      return false;
    }
    return true;
  }

  /** Sends a fatal error frame (PROTOCOL.md §6) and closes after it. */
  fatal(error: ErrorInfo, id: string | null, reason: ClosedReason): void {
    if (this.#closing) return;
    this.send(fatalMessage(error, id));
    this.close(reason, `${error.code}: ${error.message}`);
  }

  /**
   * Graceful end: take no new messages, finish those in flight, then send
   * `error` as a fatal frame and close. Frames read but not yet started are
   * answered "bad" with the same error, so nothing is dropped unreported.
   */
  drain(error: ErrorInfo): void {
    if (this.#closing || this.#draining) return;
    this.#draining = error;
    this.conn.pause();
    for (let i = this.#backlogHead; i < this.#backlog.length; i++) {
      const id = idOf(this.#backlog[i]);
      if (id !== null && this.kind === "client") this.send(statusReport(id, "bad", error));
    }
    this.#backlog = NONE;
    this.#backlogHead = 0;
    if (this.#slots.length === 0) this.fatal(error, null, ClosedReason.shutdown);
  }

  /**
   * Closes after everything queued has been written, or after LINGER_MS at
   * most: a peer that never reads, or a TLS client that never finished its
   * handshake, cannot hold the connection open.
   */
  close(reason: ClosedReason, detail?: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#closeReason = reason;
    this.#closeDetail = detail;
    this.#stopTimer();
    this.conn.end();
    this.#timer = setTimeout(() => this.conn.destroy(), LINGER_MS);
  }

  #onFrame(value: unknown): void {
    if (this.#closing) return;
    if (this.#draining) {
      const id = idOf(value);
      if (id !== null && this.kind === "client") this.send(statusReport(id, "bad", this.#draining));
      return;
    }
    // Nothing waiting and room in the window: handled at once, with no trip through the backlog.
    if (this.#backlog === NONE && !this.#authenticating && this.#slots.length < this.host.limits.sessionWindow) {
      this.#handle(value);
      if (this.#paused && this.#backlog === NONE) this.#pump();
      return;
    }
    if (this.#backlog === NONE) this.#backlog = [];
    this.#backlog.push(value);
    this.#pump();
  }

  /** Handles queued frames while the window allows; holds the socket while it does not. */
  #pump(): void {
    const window = this.host.limits.sessionWindow;
    while (
      this.#backlogHead < this.#backlog.length &&
      !this.#closing &&
      !this.#authenticating &&
      this.#slots.length < window
    ) {
      const value = this.#backlog[this.#backlogHead];
      this.#backlog[this.#backlogHead++] = undefined;
      this.#handle(value);
    }
    if (this.#backlogHead === this.#backlog.length) {
      this.#backlog = NONE;
      this.#backlogHead = 0;
    }
    const waiting = this.#backlog.length > 0;
    if (waiting && !this.#paused) {
      this.#paused = true;
      this.conn.pause();
    } else if (!waiting && this.#paused) {
      this.#paused = false;
      this.conn.resume();
    }
  }

  #handle(value: unknown): void {
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
    this.#stopTimer();
    this.#authenticating = true;
    const done = (result: AuthResult) => {
      this.#authenticating = false;
      if (this.#closing) return;
      if (!result.ok) return this.#refuse(result.error);
      this.kind = "client";
      this.username = result.username;
      this.send(statusReport(AUTH_SPECIAL_ID, "good"));
      this.host.clientReady(this);
      // Extension: the first frame's own payload is not dropped (a dummy is the customary filler).
      if (frame.payload && frame.payload.type !== "dummy") this.#dispatch(frame.payload);
      this.#pump();
    };
    const failed = (err: unknown) =>
      done({ ok: false, error: { code: ErrorCodes.internal, message: `authentication failed: ${(err as Error).message}` } });
    try {
      const result = this.host.authenticate(frame.credentials, this);
      if (result instanceof Promise) result.then(done, failed);
      else done(result);
    } catch (err) {
      failed(err);
    }
  }

  /**
   * A server-scope first frame: admitted peers get their message dispatched
   * like a client's; the status report about it goes back, then the connection
   * closes (see #flushSlots).
   */
  #admitServer(frame: Extract<FirstFrame, { scope: "server" }>, value: unknown): void {
    this.#stopTimer();
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
    this.peer = admission.peer;
    this.hops = admission.hops;
    this.#replyTo = id;
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

  #dispatch(payload: ClientPayload): void {
    this.messagesIn++;
    const slot = new Session.#Slot(this, payload.id);
    if (this.#slots === NONE) this.#slots = [];
    this.#slots.push(slot);
    try {
      this.host.route(this, payload, slot);
    } catch (err) {
      slot.settle(internalFailure(payload.id, err));
    }
  }

  #settle(slot: Slot, result: RouteResult): void {
    slot.done = true;
    slot.result = result;
    this.#flushSlots();
  }

  /**
   * Finishes messages strictly in arrival order: a finished message's
   * continuation runs only when it reaches the head, then its frames are sent.
   * Continuations run even after the client left, so its message still reaches
   * the recipients it was sent to.
   */
  #flushSlots(): void {
    let closeAfter = false;
    while (this.#slots.length > 0 && this.#slots[0]!.done) {
      const slot = this.#slots[0]!;
      const current = slot.result;
      if (current.deferred) {
        slot.done = false;
        slot.result = PENDING;
        let result: RouteResult | Promise<RouteResult>;
        try {
          // Called on its result: a deferred step may be a method.
          result = current.deferred();
        } catch (err) {
          result = internalFailure(slot.id, err);
        }
        if (result instanceof Promise) {
          result.then(
            (r) => this.#settle(slot, r),
            (err) => this.#settle(slot, internalFailure(slot.id, err)),
          );
          return;
        }
        slot.result = result;
        slot.done = true;
        continue;
      }
      this.#slots.shift();
      if (this.#slots.length === 0) this.#slots = NONE as Slot[];
      if (this.#closing) continue;
      if (this.kind === "server") {
        this.#answerServer(slot);
        return;
      }
      for (const frame of slot.result.frames) {
        if (typeof frame === "string") {
          this.sendJson(frame);
          continue;
        }
        this.send(frame);
        const header = (frame as { header?: { messageType?: unknown; status?: unknown } }).header;
        if (header?.messageType === "statusReport") this.host.reportSent?.(header.status === "good" ? "good" : "bad");
      }
      if (slot.result.good) {
        this.#sendGoodReport(slot.id);
        this.host.reportSent?.("good");
      }
      if (slot.result.close) closeAfter = true;
      if (closeAfter) break;
    }
    if (closeAfter) {
      this.close(ClosedReason.clientRequested);
      return;
    }
    if (this.#draining && this.#slots.length === 0) {
      this.fatal(this.#draining, null, ClosedReason.shutdown);
      return;
    }
    this.#pump();
  }

  /** The one message of a server connection is done: report to the sender (if it gave an id) and close. */
  #answerServer(slot: Slot): void {
    const frames = slot.result.good ? [...slot.result.frames, statusReport(slot.id, "good")] : slot.result.frames;
    const report = frames
      .map((f) => (typeof f === "string" ? (JSON.parse(f) as object) : f))
      .find((f) => (f as { header?: { messageType?: unknown } }).header?.messageType === "statusReport") as
      | { header: { status: string; error?: ErrorInfo } }
      | undefined;
    const status = report?.header.status === "good" ? "good" : "bad";
    this.log[status === "good" ? "debug" : "info"]("server message done", {
      peer: this.peer,
      status,
      code: report?.header.error?.code,
    });
    if (this.#replyTo !== undefined) {
      // The report names the sender's id, whatever id the gateway used inside.
      const out = report ? { ...report, payload: { id: this.#replyTo } } : statusReport(this.#replyTo, "bad", {
        code: ErrorCodes.internal,
        message: "the message produced no status report",
      });
      this.send(out);
      this.host.reportSent?.(status);
    }
    this.close(ClosedReason.serverMessageDone);
  }
}

function internalFailure(id: string, err: unknown): RouteResult {
  const message = err instanceof Error ? err.message : String(err);
  return { frames: [statusReport(id, "bad", { code: ErrorCodes.internal, message })] };
}

/** The payload id of a frame that failed validation, if it has one, for the fatal frame. */
function idOf(value: unknown): string | null {
  const payload = (value as { payload?: { id?: unknown } } | null)?.payload;
  return typeof payload?.id === "string" ? payload.id : null;
}
