/**
 * Conversations with a handler over its UNIX socket (PROTOCOL.md §4):
 * per-message (the original: a new connection, one frame each way) or
 * persistent (kept connections, requests pipelined, answers taken in FIFO order).
 * @module
 */
import type { Logger } from "../log/logger.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import { type ErrorCode, ErrorCodes } from "../protocol/reports.ts";
import type { Conn, Runtime } from "../runtime/types.ts";

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

/** `answer` is the decoded JSON and `text` what it was parsed from. */
export type Done = (error: HandlerError | undefined, answer?: unknown, text?: string) => void;

export interface HandlerLink {
  /**
   * Sends one frame of serialised JSON; `done` is called once, with the
   * handler's answer (decoded JSON) or why there is none. A callback, not a
   * promise: this is the innermost loop of every handled message.
   */
  request(json: string, timeoutMs: number, done: Done): void;
  /** Requests written and not yet answered. */
  readonly inFlight: number;
  /** Fails whatever is in flight and drops kept connections. */
  close(reason: string): void;
}

export interface LinkOptions {
  runtime: Runtime;
  socketPath: string;
  maxFrameBytes: number;
  log: Logger;
}

/** The original protocol: every request opens its own connection, which the answer ends. */
export function perMessageLink(opts: LinkOptions): HandlerLink {
  const open = new Set<(reason: string) => void>();
  return {
    get inFlight() {
      return open.size;
    },
    request(json, timeoutMs, done) {
      let settled = false;
      let conn: Conn | undefined;
      const finish = (err: HandlerError | undefined, value?: unknown, text?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        open.delete(abort);
        // Closed at once either way (PROTOCOL.md §4: read the answer, close): a
        // graceful end would add a shutdown() per message and wait for the handler.
        conn?.destroy();
        done(err, value, text);
      };
      const abort = (reason: string) => finish(new HandlerError(ErrorCodes.handlerUnavailable, reason));
      open.add(abort);
      const timer = setTimeout(
        () => finish(new HandlerError(ErrorCodes.handlerTimeout, `no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const decoder = new FrameDecoder(opts.maxFrameBytes, (value, _index, _owner, text) => finish(undefined, value, text));
      opts.runtime
        .connect(
          { kind: "unix", path: opts.socketPath },
          {
            data(_c, chunk) {
              const err = decoder.push(chunk);
              if (err) finish(new HandlerError(ErrorCodes.handlerFailed, `unreadable answer: ${err.message}`));
            },
            close() {
              // The usual close follows the answer: build no Error (a stack capture) for it.
              if (!settled) finish(new HandlerError(ErrorCodes.handlerFailed, "the handler closed the connection without answering"));
            },
          },
          timeoutMs,
        )
        .then(
          (c) => {
            conn = c;
            if (settled) c.destroy();
            else c.writeFrame(json);
          },
          (err: Error) => finish(new HandlerError(ErrorCodes.handlerUnavailable, err.message)),
        );
    },
    close(reason) {
      for (const abort of [...open]) abort(reason);
    },
  };
}

interface Pending {
  done: Done;
  deadline: number;
  timeoutMs: number;
}

/**
 * One kept connection. Answers carry no id, so the n-th answer belongs to the
 * n-th request; a request that times out therefore poisons everything queued
 * behind it, and the connection is dropped (and later redialled) rather than
 * left to misattribute late answers.
 */
class PipelinedConnection {
  #pending: Pending[] = [];
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
    this.#decoder = new FrameDecoder(opts.maxFrameBytes, (value, _index, _owner, text) => this.#answer(value, text));
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
    return this.#pending.length - this.#head;
  }

  get dead(): boolean {
    return this.#dead;
  }

  request(json: string, timeoutMs: number, done: Done): void {
    this.#pending.push({ done, deadline: performance.now() + timeoutMs, timeoutMs });
    this.#armTimer();
    if (this.#conn) this.#conn.writeFrame(json);
    else this.#outbox.push(json);
  }

  /**
   * One timer per connection, not one per request: answers come in FIFO order,
   * so the oldest unanswered request is always the first to run out of time.
   */
  #armTimer(): void {
    if (this.#timer !== undefined || this.#head >= this.#pending.length) return;
    const head = this.#pending[this.#head]!;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#dead || this.#head >= this.#pending.length) return;
      const oldest = this.#pending[this.#head]!;
      if (performance.now() >= oldest.deadline - 1) {
        this.fail(ErrorCodes.handlerTimeout, `no answer within ${oldest.timeoutMs} ms (kept connection reset)`);
      } else {
        this.#armTimer();
      }
    }, Math.max(0, head.deadline - performance.now()));
  }

  #answer(value: unknown, text: string): void {
    if (this.#head >= this.#pending.length) {
      this.opts.log.warn("handler sent an answer nobody asked for; dropping the connection");
      this.fail(ErrorCodes.handlerFailed, "unsolicited answer");
      return;
    }
    const p = this.#pending[this.#head]!;
    this.#pending[this.#head++] = undefined as unknown as Pending;
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
    p.done(undefined, value, text);
  }

  /** Fails everything in flight and drops the connection. */
  fail(code: ErrorCode, message: string): void {
    if (this.#dead) return;
    this.#dead = true;
    const pending = this.#pending.slice(this.#head);
    this.#pending = [];
    this.#head = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#conn?.destroy();
    this.onDead(this);
    const error = new HandlerError(code, message);
    for (const p of pending) p.done(error);
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
    request(json, timeoutMs, done) {
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
      conn.request(json, timeoutMs, done);
    },
    close(reason) {
      for (const c of slots) c?.fail(ErrorCodes.handlerUnavailable, reason);
    },
  };
}
