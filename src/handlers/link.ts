/**
 * Conversations with a handler over its UNIX socket (PROTOCOL.md §4):
 * per-message (the original: a new connection, one frame each way) or
 * persistent (kept connections, requests pipelined, answers taken in FIFO order).
 * @module
 */
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS, FramedConnection } from "../connection/framed.ts";
import type { Logger } from "../log/logger.ts";
import type { FrameError } from "../protocol/frame.ts";
import { ANSWER_DATA_PATHS } from "../protocol/messages.ts";
import { type ErrorCode, ErrorCodes } from "../protocol/reports.ts";
import type { Conn, Endpoint, Runtime } from "../runtime/types.ts";

/** Why a handler request failed; the code goes into the originator's bad report. */
export class HandlerError extends Error {
  override name = "HandlerError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Who waits for one request's answer. An object with a method, not a
 * closure: the gateway makes one per handled message and it is the same
 * object that carries the answer on, so nothing else is allocated for it.
 */
export interface LinkReply {
  /**
   * Set by the link when it takes the request (`performance.now()`): the
   * request's deadline counts from it, and so can the answer's latency.
   */
  sentAt: number;
  /**
   * Called once: the handler's answer, or why there is none. In a long
   * answer the data is a RawJson (ANSWER_DATA_PATHS): checked text, not built.
   */
  answered(error: HandlerError | undefined, answer?: unknown): void;
}

export interface HandlerLink {
  /**
   * Sends one frame of serialised JSON; `reply` is told once, with the
   * handler's answer or why there is none. A callback, not a promise: this
   * is the innermost loop of every handled message.
   */
  request(json: string, timeoutMs: number, reply: LinkReply): void;
  /** Requests written and not yet answered. */
  readonly inFlight: number;
  /** Fails whatever is in flight and drops kept connections. */
  close(reason: string): void;
}

export interface LinkOptions {
  runtime: Runtime;
  socketPath: string;
  maxFrameBytes: number;
  /** Read for each new connection, so a reload applies to the next one. */
  maxJsonDepth(): number;
  log: Logger;
  /** Hears every close of a link's connection, with its reason (for the metrics). */
  closed?(reason: ClosedReason): void;
}

/** The closes that are how a link's connections end in the usual course: not worth a log line each. */
const USUAL_CLOSES: ReadonlySet<ClosedReason> = new Set([ClosedReason.exchangeDone, ClosedReason.peerClosed, ClosedReason.released]);

/** Counts a link connection's close, and logs one that is not the usual end. */
function noteClosed(opts: LinkOptions, reason: ClosedReason, detail: string | undefined): void {
  opts.closed?.(reason);
  if (!USUAL_CLOSES.has(reason)) opts.log.debug("handler connection closed", { reason, detail });
}

/** The original protocol: every request opens its own connection, which the answer ends. */
export function perMessageLink(opts: LinkOptions): HandlerLink {
  return new PerMessageLink(opts);
}

/**
 * One request on its own connection. This runs once per message, so the
 * connection, its decoder's owner and the request's state are one object.
 */
class OneShot extends FramedConnection {
  settled = false;
  /**
   * The request, kept as its text until the connection is open: queued at
   * once it would hold an output block for the whole dial, and with many
   * dials at a time those blocks outgrow the pool and are made anew.
   */
  #request: string | undefined;

  constructor(
    readonly link: PerMessageLink,
    readonly reply: LinkReply,
    readonly deadline: number,
    readonly timeoutMs: number,
    maxFrameBytes: number,
    maxDepth: number,
    request: string,
  ) {
    super({ maxFrameBytes, keepAsText: ANSWER_DATA_PATHS, maxDepth });
    this.#request = request;
  }

  override attach(conn: Conn): void {
    const request = this.#request;
    this.#request = undefined;
    // Queued just before the core's attach, which writes what is queued at once (or drops it, when closed meanwhile).
    if (request !== undefined) this.sendJson(request);
    super.attach(conn);
  }

  receive(value: unknown): void {
    this.finish(undefined, value);
  }

  protected override frameFailed(error: FrameError): void {
    this.finish(unreadable(error), undefined, ClosedReason.frameError);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    noteClosed(this.link.opts, reason, detail);
    // The usual close follows the answer: build no Error (a stack capture) for it.
    if (!this.settled) this.finish(new HandlerError(ErrorCodes.handlerFailed, "the handler closed the connection without answering"));
  }

  finish(err: HandlerError | undefined, value?: unknown, reason: ClosedReason = ClosedReason.exchangeDone): void {
    if (this.settled) return;
    this.settled = true;
    this.link.forget(this);
    // Closed at once either way (PROTOCOL.md §4: read the answer, close): a
    // graceful end would add a shutdown() per message and wait for the handler.
    this.destroy(reason);
    this.reply.answered(err, value);
  }
}

/** Why an answer frame could not be taken: a too deep one says so, anything else is the handler's failure. */
function unreadable(err: FrameError): HandlerError {
  const code = err.code === "too_deep" ? ErrorCodes.tooDeep : ErrorCodes.handlerFailed;
  return new HandlerError(code, `unreadable answer: ${err.message}`);
}

class PerMessageLink implements HandlerLink {
  /** In the order sent. */
  readonly #open = new Set<OneShot>();
  readonly #to: Endpoint;
  /** One timer for the link, not one per request, set for the earliest deadline. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(readonly opts: LinkOptions) {
    this.#to = { kind: "unix", path: opts.socketPath };
  }

  get inFlight(): number {
    return this.#open.size;
  }

  request(json: string, timeoutMs: number, reply: LinkReply): void {
    reply.sentAt = performance.now();
    const req = new OneShot(this, reply, reply.sentAt + timeoutMs, timeoutMs, this.opts.maxFrameBytes, this.opts.maxJsonDepth(), json);
    this.#open.add(req);
    if (req.deadline < this.#timerAt) this.#arm(req.deadline);
    // Written once connected. The request's own deadline covers the dial too: no second timer for it.
    this.opts.runtime.connect(this.#to, FRAMED_EVENTS, undefined, { context: req }).then(
      undefined,
      (err: Error) => req.finish(new HandlerError(ErrorCodes.handlerUnavailable, err.message), undefined, ClosedReason.socketError),
    );
  }

  forget(req: OneShot): void {
    this.#open.delete(req);
    // An idle link holds no timer: nothing should keep the process up for it.
    if (this.#open.size === 0) this.#disarm();
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
  }

  /** Fails every request past its deadline, then waits for the next deadline. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    // A millisecond early counts: timers may fire that much before their time.
    const now = performance.now() + 1;
    let next = Infinity;
    for (const req of this.#open) {
      if (req.deadline <= now) req.finish(new HandlerError(ErrorCodes.handlerTimeout, `no answer within ${req.timeoutMs} ms`), undefined, ClosedReason.timeout);
      else if (req.deadline < next) next = req.deadline;
    }
    if (next < Infinity) this.#arm(next);
  }

  close(reason: string): void {
    for (const req of [...this.#open]) req.finish(new HandlerError(ErrorCodes.handlerUnavailable, reason), undefined, ClosedReason.released);
    this.#disarm();
  }
}

function requestTimedOut(c: PipelinedConnection): void {
  c.timedOut();
}

/**
 * One kept connection. Answers carry no id, so the n-th answer belongs to the
 * n-th request; a request that times out therefore poisons everything queued
 * behind it, and the connection is dropped (and later redialled) rather than
 * left to misattribute late answers.
 */
class PipelinedConnection extends FramedConnection {
  // Requests in flight, oldest at #head, as parallel arrays: no record object per request.
  // A request's deadline is its reply's sentAt plus its timeout.
  #replies: (LinkReply | undefined)[] = [];
  #timeouts: number[] = [];
  #head = 0;
  #dead = false;

  constructor(
    private readonly opts: LinkOptions,
    private readonly onDead: (c: PipelinedConnection) => void,
    connectTimeoutMs: number,
  ) {
    super({
      maxFrameBytes: opts.maxFrameBytes,
      keepAsText: ANSWER_DATA_PATHS,
      maxDepth: opts.maxJsonDepth(),
      // The length prefix still delimits the next answer: only the request this one belongs to fails.
      onBadBody: (err) => this.#unreadable(err),
    });
    opts.runtime
      .connect({ kind: "unix", path: opts.socketPath }, FRAMED_EVENTS, connectTimeoutMs, { context: this })
      .then(undefined, (err: Error) => this.fail(ErrorCodes.handlerUnavailable, err.message, ClosedReason.socketError));
  }

  get inFlight(): number {
    return this.#replies.length - this.#head;
  }

  get dead(): boolean {
    return this.#dead;
  }

  request(json: string, timeoutMs: number, reply: LinkReply): void {
    reply.sentAt = performance.now();
    this.#replies.push(reply);
    this.#timeouts.push(timeoutMs);
    this.#armTimer();
    // Queued; written once connected.
    this.sendJson(json);
  }

  /**
   * One timer per connection, not one per request: answers come in FIFO order,
   * so the oldest unanswered request is always the first to run out of time.
   */
  #armTimer(): void {
    if (this.timer !== undefined || this.#head >= this.#replies.length) return;
    this.timer = setTimeout(requestTimedOut, Math.max(0, this.#oldestDeadline() - performance.now()), this);
  }

  timedOut(): void {
    this.timer = undefined;
    if (this.#dead || this.#head >= this.#replies.length) return;
    if (performance.now() >= this.#oldestDeadline() - 1) {
      this.fail(ErrorCodes.handlerTimeout, `no answer within ${this.#timeouts[this.#head]} ms (kept connection reset)`, ClosedReason.timeout);
    } else {
      this.#armTimer();
    }
  }

  #oldestDeadline(): number {
    return this.#replies[this.#head]!.sentAt + this.#timeouts[this.#head]!;
  }

  receive(value: unknown): void {
    if (this.#head >= this.#replies.length) {
      this.opts.log.warn("handler sent an answer nobody asked for; dropping the connection");
      this.fail(ErrorCodes.handlerFailed, "unsolicited answer", ClosedReason.unexpectedFrame);
      return;
    }
    const reply = this.#replies[this.#head]!;
    // Let the answered one go now; the arrays are trimmed once mostly spent.
    this.#replies[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#replies.length) this.#trim();
    reply.answered(undefined, value);
  }

  /** An answer frame that is not a readable value: its request fails, the ones behind it carry on. */
  #unreadable(err: FrameError): void {
    if (this.#head >= this.#replies.length) return this.fail(ErrorCodes.handlerFailed, "unsolicited answer", ClosedReason.unexpectedFrame);
    const reply = this.#replies[this.#head]!;
    this.#replies[this.#head++] = undefined;
    reply.answered(unreadable(err));
  }

  protected override frameFailed(error: FrameError): void {
    this.fail(ErrorCodes.handlerFailed, `unreadable answer: ${error.message}`, ClosedReason.frameError);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    noteClosed(this.opts, reason, detail);
    const n = this.inFlight;
    this.fail(ErrorCodes.handlerFailed, `the handler closed its connection with ${n} request${n === 1 ? "" : "s"} unanswered`, reason);
  }

  #trim(): void {
    this.#replies = this.#replies.slice(this.#head);
    this.#timeouts = this.#timeouts.slice(this.#head);
    this.#head = 0;
  }

  /** Fails everything in flight and drops the connection. */
  fail(code: ErrorCode, message: string, reason: ClosedReason): void {
    if (this.#dead) return;
    this.#dead = true;
    const pending = this.#replies.slice(this.#head);
    this.#replies = [];
    this.#timeouts = [];
    this.#head = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.destroy(reason, message);
    this.onDead(this);
    const error = new HandlerError(code, message);
    for (const reply of pending) reply!.answered(error);
  }
}

/** Kept, pipelined connections; each request goes to the least busy one. */
export function persistentLink(opts: LinkOptions & { connections: number }): HandlerLink {
  const slots: (PipelinedConnection | undefined)[] = Array.from({ length: opts.connections }, () => undefined);
  const forget = (c: PipelinedConnection) => {
    const i = slots.indexOf(c);
    if (i >= 0) slots[i] = undefined;
  };
  return {
    get inFlight() {
      return slots.reduce((n, c) => n + (c?.inFlight ?? 0), 0);
    },
    request(json, timeoutMs, reply) {
      let best = -1;
      for (let i = 0; i < slots.length; i++) {
        const c = slots[i];
        if (!c || c.dead) {
          best = i;
          break;
        }
        if (best < 0 || c.inFlight < slots[best]!.inFlight) best = i;
      }
      let conn = slots[best];
      if (!conn || conn.dead) conn = slots[best] = new PipelinedConnection(opts, forget, timeoutMs);
      conn.request(json, timeoutMs, reply);
    },
    close(reason) {
      for (const c of slots) c?.fail(ErrorCodes.handlerUnavailable, reason, ClosedReason.released);
    },
  };
}
