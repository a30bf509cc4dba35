/**
 * The one framed connection under every Bester conversation the gateway
 * has: client and server sessions, handler links, federation deliveries,
 * informer clients. It owns the frame decoder, the outbound queue (frames
 * encoded straight into it, offered to the transport once per turn), the
 * slow-consumer limit, the linger after a close, and the reason the
 * connection ended. What the frames mean is its subclasses' business.
 * @module
 */
import { FrameDecoder, type FrameError } from "../protocol/frame.ts";
import type { CutPaths } from "../protocol/json-cut.ts";
import { OutBuffer } from "../protocol/out-buffer.ts";
import type { Conn, SocketEvents } from "../runtime/types.ts";
import { ClosedReason, closeKindOf } from "./close-reason.ts";
import { flushAtTurnEnd, frameQueued } from "./flush-turn.ts";

/** How long a closing connection may take to write what is queued before it is cut. */
export const LINGER_MS = 5000;

const OPEN = 0;
const CLOSING = 1;
/** Closing, and the transport has been told to end once its queue is written. */
const ENDING = 2;
const GONE = 3;

export interface FramedOptions {
  /** Frames above this are refused before their body is read. */
  maxFrameBytes: number;
  /** Members a long frame keeps as checked text (json-cut.ts). */
  keepAsText?: CutPaths;
  /** Given, a frame that is not UTF-8 or JSON goes here and reading goes on; else it fails the connection. */
  onBadBody?: (error: FrameError) => void;
  /** `receive` gets each frame's text, not parsed (frame.ts). */
  asText?: boolean;
  /** Deepest nesting of arrays and objects in one frame (limits.maxJsonDepth); deeper is a `too_deep` bad body. */
  maxDepth?: number;
}

function received(value: unknown, _index: number, owner: unknown): void {
  (owner as FramedConnection).receive(value);
}

function lingerExpired(c: FramedConnection): void {
  c.destroy();
}

export abstract class FramedConnection {
  /** The transport, once accepted or dialled. */
  conn: Conn | undefined;
  /** A subclass's own timer until the connection closes (one field: idle connections are many); then the linger limit. */
  protected timer: ReturnType<typeof setTimeout> | undefined;
  readonly #decoder: FrameDecoder;
  /** Made on the first write and dropped once written out: idle connections hold none. */
  #out: OutBuffer | undefined;
  /** Bytes queued since the last flush: not offered to the transport yet. */
  #unoffered = 0;
  #framesThisTurn = 0;
  #flushQueued = false;
  #state = OPEN;
  #reason: ClosedReason | undefined;
  #detail: string | undefined;

  constructor(options: FramedOptions) {
    this.#decoder = new FrameDecoder(options.maxFrameBytes, received, {
      owner: this,
      keepAsText: options.keepAsText,
      onBadBody: options.onBadBody,
      asText: options.asText,
      maxDepth: options.maxDepth,
    });
  }

  /** One decoded frame, in order. */
  abstract receive(value: unknown): void;

  /** The connection is gone, for `reason`; called exactly once. */
  protected abstract closed(reason: ClosedReason, detail: string | undefined): void;

  /**
   * A frame could not be decoded; the decoder takes nothing more. By default
   * the connection is cut; a subclass may say why first.
   */
  protected frameFailed(error: FrameError): void {
    this.destroy(ClosedReason.frameError, `${error.code}: ${error.message}`);
  }

  /** Bytes queued above which the peer is cut off as a slow consumer. */
  protected get maxPendingBytes(): number {
    return Infinity;
  }

  /** The transport is up: what was queued before goes out now. */
  attach(conn: Conn): void {
    this.conn = conn;
    conn.context = this;
    if (this.#state === GONE) return conn.destroy();
    if (this.#out !== undefined || this.#state === CLOSING) this.flush();
  }

  get closing(): boolean {
    return this.#state !== OPEN;
  }

  get gone(): boolean {
    return this.#state === GONE;
  }

  get closeReason(): ClosedReason | undefined {
    return this.#reason;
  }

  /**
   * Bytes the transport did not take when they were offered: what a slow
   * reader leaves behind. Bytes queued in this turn have not been offered
   * yet and do not count, so a burst to a reader that keeps up is never
   * mistaken for a backlog.
   */
  get pendingBytes(): number {
    return this.#out === undefined ? 0 : this.#out.bytes - this.#unoffered;
  }

  /** A chunk read from the transport. */
  data(chunk: Uint8Array): void {
    if (this.#state !== OPEN) return;
    const err = this.#decoder.push(chunk);
    if (err !== undefined && this.#state === OPEN) this.frameFailed(err);
  }

  /**
   * Queues one frame of serialised JSON, given whole or as up to three parts
   * (encoded without joining them). False when it was not queued: the
   * connection is closing, or the peer was just cut off as a slow consumer.
   */
  sendJson(json: string, more?: string, last?: string): boolean {
    if (this.#state !== OPEN) return false;
    const out = (this.#out ??= new OutBuffer());
    const before = out.bytes;
    out.pushFrame(json, more, last);
    this.#unoffered += out.bytes - before;
    return this.#queued();
  }

  /** Queues an encoded frame (or several); false like {@link sendJson}. */
  sendBytes(bytes: Uint8Array): boolean {
    if (this.#state !== OPEN) return false;
    (this.#out ??= new OutBuffer()).push(bytes);
    this.#unoffered += bytes.byteLength;
    return this.#queued();
  }

  #queued(): boolean {
    if (frameQueued(++this.#framesThisTurn)) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      flushAtTurnEnd(this);
    }
    const pending = this.pendingBytes;
    if (pending <= this.maxPendingBytes) return true;
    // A fatal frame would only queue behind the backlog: cut at once.
    this.destroy(ClosedReason.slowConsumer, `${pending} bytes pending, limit ${this.maxPendingBytes}`);
    return false;
  }

  /** Offers what is queued to the transport; ends a closing connection once all of it is taken. */
  flush(): void {
    this.#flushQueued = false;
    this.#framesThisTurn = 0;
    this.#unoffered = 0;
    const conn = this.conn;
    if (conn === undefined || this.#state === GONE) return;
    const out = this.#out;
    if (out !== undefined) {
      // A backlog may span blocks: one write each, until the transport stops taking.
      if (!out.writeTo(conn)) return;
      this.#out = undefined;
    }
    if (this.#state === CLOSING) {
      this.#state = ENDING;
      conn.end(closeKindOf(this.#reason, this.#detail));
    }
  }

  pause(): void {
    this.conn?.pause();
  }

  resume(): void {
    this.conn?.resume();
  }

  /**
   * Takes no more frames either way, writes what is queued, then closes; a
   * peer that does not take it within LINGER_MS is cut.
   */
  close(reason: ClosedReason, detail?: string): void {
    if (this.#state !== OPEN) return;
    this.#state = CLOSING;
    this.#reason = reason;
    this.#detail = detail;
    clearTimeout(this.timer);
    this.timer = setTimeout(lingerExpired, LINGER_MS, this);
    this.flush();
  }

  /** Closes now, dropping what is queued. The first reason given (by close or destroy) is the one kept. */
  destroy(reason?: ClosedReason, detail?: string): void {
    if (this.#state === GONE) return;
    if (this.#reason === undefined && reason !== undefined) {
      this.#reason = reason;
      this.#detail = detail;
    }
    this.#out?.clear();
    this.#out = undefined;
    if (this.conn !== undefined) this.conn.destroy();
    else this.socketClosed();
  }

  /** The transport is closed (the adapter's close event, or a dial that never connected). */
  socketClosed(err?: Error): void {
    if (this.#state === GONE) return;
    this.#state = GONE;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.#out?.clear();
    this.#out = undefined;
    const reason = this.#reason ?? (err ? ClosedReason.socketError : ClosedReason.peerClosed);
    this.#reason = reason;
    this.closed(reason, this.#detail ?? err?.message);
  }
}

/**
 * The transport callbacks of every framed connection: each reads its owner
 * from `conn.context`. Listeners add their own `open`, which makes the owner
 * and attaches it. A connection refused before it had an owner (too many
 * connections) has none: what it still sends while it closes is dropped.
 */
export const FRAMED_EVENTS: SocketEvents = {
  open(conn) {
    (conn.context as FramedConnection | undefined)?.attach(conn);
  },
  data(conn, chunk) {
    (conn.context as FramedConnection | undefined)?.data(chunk);
  },
  drain(conn) {
    (conn.context as FramedConnection | undefined)?.flush();
  },
  close(conn, err) {
    (conn.context as FramedConnection | undefined)?.socketClosed(err);
  },
};
