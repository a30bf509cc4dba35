/**
 * Conversations with a handler over its UNIX socket (PROTOCOL.md §4):
 * per-message (the original: a new connection, one frame each way) or
 * persistent (kept connections, requests pipelined, answers taken in FIFO order).
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { type FrameError, FrameDecoder } from "../protocol/frame.ts";
import { ANSWER_DATA_PATHS } from "../protocol/messages.ts";
import { type ErrorCode, ErrorCodes } from "../protocol/reports.ts";
import type { Conn, Endpoint, Runtime, SocketEvents } from "../runtime/types.ts";

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
}

/** The original protocol: every request opens its own connection, which the answer ends. */
export function perMessageLink(opts: LinkOptions): HandlerLink {
  return new PerMessageLink(opts);
}

/**
 * One request on its own connection. The object is the connection's event
 * callbacks and its decoder's owner at once: this runs once per message, so
 * it allocates one object where closures would be several.
 */
class OneShot implements SocketEvents {
  conn: Conn | undefined;
  settled = false;
  readonly #decoder: FrameDecoder;

  constructor(
    readonly link: PerMessageLink,
    readonly reply: LinkReply,
    readonly deadline: number,
    readonly timeoutMs: number,
    maxFrameBytes: number,
    maxDepth: number,
  ) {
    this.#decoder = new FrameDecoder(maxFrameBytes, answered, { owner: this, keepAsText: ANSWER_DATA_PATHS, maxDepth });
  }

  data(_c: Conn, chunk: Uint8Array): void {
    const err = this.#decoder.push(chunk);
    if (err) this.finish(unreadable(err));
  }

  close(): void {
    // The usual close follows the answer: build no Error (a stack capture) for it.
    if (!this.settled) this.finish(new HandlerError(ErrorCodes.handlerFailed, "the handler closed the connection without answering"));
  }

  finish(err: HandlerError | undefined, value?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.link.forget(this);
    // Closed at once either way (PROTOCOL.md §4: read the answer, close): a
    // graceful end would add a shutdown() per message and wait for the handler.
    this.conn?.destroy();
    this.reply.answered(err, value);
  }
}

/** Why an answer frame could not be taken: a too deep one says so, anything else is the handler's failure. */
function unreadable(err: FrameError): HandlerError {
  const code = err.code === "too_deep" ? ErrorCodes.tooDeep : ErrorCodes.handlerFailed;
  return new HandlerError(code, `unreadable answer: ${err.message}`);
}

function answered(value: unknown, _index: number, owner: unknown): void {
  (owner as OneShot).finish(undefined, value);
}

class PerMessageLink implements HandlerLink {
  /** In the order sent. */
  readonly #open = new Set<OneShot>();
  readonly #to: Endpoint;
  /** One timer for the link, not one per request, set for the earliest deadline. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(private readonly opts: LinkOptions) {
    this.#to = { kind: "unix", path: opts.socketPath };
  }

  get inFlight(): number {
    return this.#open.size;
  }

  request(json: string, timeoutMs: number, reply: LinkReply): void {
    reply.sentAt = performance.now();
    const req = new OneShot(this, reply, reply.sentAt + timeoutMs, timeoutMs, this.opts.maxFrameBytes, this.opts.maxJsonDepth());
    this.#open.add(req);
    if (req.deadline < this.#timerAt) this.#arm(req.deadline);
    // The request's own deadline covers the dial too: no second timer for it.
    this.opts.runtime.connect(this.#to, req).then(
      (c) => {
        req.conn = c;
        if (req.settled) c.destroy();
        else c.writeFrame(json);
      },
      (err: Error) => req.finish(new HandlerError(ErrorCodes.handlerUnavailable, err.message)),
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
      if (req.deadline <= now) req.finish(new HandlerError(ErrorCodes.handlerTimeout, `no answer within ${req.timeoutMs} ms`));
      else if (req.deadline < next) next = req.deadline;
    }
    if (next < Infinity) this.#arm(next);
  }

  close(reason: string): void {
    for (const req of [...this.#open]) req.finish(new HandlerError(ErrorCodes.handlerUnavailable, reason));
    this.#disarm();
  }
}

/**
 * One kept connection. Answers carry no id, so the n-th answer belongs to the
 * n-th request; a request that times out therefore poisons everything queued
 * behind it, and the connection is dropped (and later redialled) rather than
 * left to misattribute late answers.
 */
class PipelinedConnection {
  // Requests in flight, oldest at #head, as parallel arrays: no record object per request.
  // A request's deadline is its reply's sentAt plus its timeout.
  #replies: (LinkReply | undefined)[] = [];
  #timeouts: number[] = [];
  #head = 0;
  #conn: Conn | undefined;
  #outbox: string[] = [];
  #dead = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #decoder: FrameDecoder;

  constructor(
    private readonly opts: LinkOptions,
    private readonly onDead: (c: PipelinedConnection) => void,
    connectTimeoutMs: number,
  ) {
    this.#decoder = new FrameDecoder(opts.maxFrameBytes, (value) => this.#answer(value), {
      keepAsText: ANSWER_DATA_PATHS,
      maxDepth: opts.maxJsonDepth(),
      // The length prefix still delimits the next answer: only the request this one belongs to fails.
      onBadBody: (err) => this.#unreadable(err),
    });
    opts.runtime
      .connect(
        { kind: "unix", path: opts.socketPath },
        {
          data: (_c, chunk) => {
            const err = this.#decoder.push(chunk);
            if (err) this.fail(ErrorCodes.handlerFailed, `unreadable answer: ${err.message}`);
          },
          close: () => {
            const n = this.inFlight;
            this.fail(ErrorCodes.handlerFailed, `the handler closed its connection with ${n} request${n === 1 ? "" : "s"} unanswered`);
          },
        },
        connectTimeoutMs,
      )
      .then(
        (conn) => {
          if (this.#dead) return conn.destroy();
          this.#conn = conn;
          for (const json of this.#outbox) conn.writeFrame(json);
          this.#outbox = [];
        },
        (err: Error) => this.fail(ErrorCodes.handlerUnavailable, err.message),
      );
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
    if (this.#conn) this.#conn.writeFrame(json);
    else this.#outbox.push(json);
  }

  /**
   * One timer per connection, not one per request: answers come in FIFO order,
   * so the oldest unanswered request is always the first to run out of time.
   */
  #armTimer(): void {
    if (this.#timer !== undefined || this.#head >= this.#replies.length) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#dead || this.#head >= this.#replies.length) return;
      if (performance.now() >= this.#oldestDeadline() - 1) {
        this.fail(ErrorCodes.handlerTimeout, `no answer within ${this.#timeouts[this.#head]} ms (kept connection reset)`);
      } else {
        this.#armTimer();
      }
    }, Math.max(0, this.#oldestDeadline() - performance.now()));
  }

  #oldestDeadline(): number {
    return this.#replies[this.#head]!.sentAt + this.#timeouts[this.#head]!;
  }

  #answer(value: unknown): void {
    if (this.#head >= this.#replies.length) {
      this.opts.log.warn("handler sent an answer nobody asked for; dropping the connection");
      this.fail(ErrorCodes.handlerFailed, "unsolicited answer");
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
    if (this.#head >= this.#replies.length) return this.fail(ErrorCodes.handlerFailed, "unsolicited answer");
    const reply = this.#replies[this.#head]!;
    this.#replies[this.#head++] = undefined;
    reply.answered(unreadable(err));
  }

  #trim(): void {
    this.#replies = this.#replies.slice(this.#head);
    this.#timeouts = this.#timeouts.slice(this.#head);
    this.#head = 0;
  }

  /** Fails everything in flight and drops the connection. */
  fail(code: ErrorCode, message: string): void {
    if (this.#dead) return;
    this.#dead = true;
    const pending = this.#replies.slice(this.#head);
    this.#replies = [];
    this.#timeouts = [];
    this.#head = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#conn?.destroy();
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
      for (const c of slots) c?.fail(ErrorCodes.handlerUnavailable, reason);
    },
  };
}
