/**
 * A WebSocket as the byte transport every other connection is
 * (PROTOCOL.md §10), shared by the Bun and Deno listeners and by the dialled
 * WebSocket: the layers above see framed chunks and a write that takes what
 * it can, exactly as on a socket.
 *
 * - In: each message, text or binary, becomes one framed chunk (4-byte
 *   little-endian length, then its UTF-8 bytes), so the frame decoder, its
 *   size limit and every rule above apply unchanged.
 * - Out: a write takes whole frames and sends each body as one text
 *   message, and stops taking while the runtime holds more than
 *   {@link HIGH_WATER_BYTES} unsent: the rest stays with the caller
 *   (`pendingBytes`, the slow-consumer rule) until `drain`.
 * - Pause: a WebSocket's sender cannot be held back as a TCP window holds
 *   it (Bun can stop reading the socket, Deno cannot, and messages already
 *   read still arrive), so what arrives while paused is kept, up to a bound,
 *   and past it the connection is closed with the reason logged.
 * @module
 */
import { Buffer } from "node:buffer";
import { nextConnId } from "./conn-id.ts";
import type { CloseKind, Conn, Endpoint, SocketEvents } from "./types.ts";

/** What the connection needs of one runtime's WebSocket. */
export interface WebSocketPeer {
  /** Sends one text message; false if the runtime dropped it. */
  sendText(text: string): boolean;
  /** Bytes sent and not yet written to the network. */
  bufferedAmount(): number;
  close(code: number): void;
  /** Drops the connection without a close handshake. */
  terminate(): void;
  /** Asks for {@link WebSocketConn.drained} once the buffered amount is low again (Bun: its drain event; elsewhere a poll). */
  watchDrain(): void;
  /** Runs `fn`, whose sends leave together (one system call), where the runtime can batch them (Bun's cork). */
  batch?<R>(fn: () => R): R;
  /** Stops reading the network, where the runtime can (Bun); messages already read still arrive. */
  pause?(): void;
  resume?(): void;
}

/** RFC 6455 close codes for the reasons a connection is ended (PROTOCOL.md §10). */
export const CLOSE_CODES: Readonly<Record<CloseKind, number>> = {
  normal: 1000,
  going_away: 1001,
  policy: 1008,
  too_big: 1009,
};

/** Close codes a peer ends with that are no error: normal, going away, and none given. */
const CLEAN_CLOSES = new Set([1000, 1001, 1005]);

/**
 * Unsent bytes the runtime may hold before a write stops taking frames.
 * Deno sends asynchronously, so a busy turn's frames sit there until its
 * end: the bound must hold a turn's output to a fast reader (a window of
 * frames) without a stop and a poll, and stay about a kernel socket
 * buffer's size, so a slow reader's backlog is the caller's to count.
 */
export const HIGH_WATER_BYTES = 256 * 1024;

/** Framing buffer for text messages, kept while this small: one per process, reused by every message. */
const SCRATCH_KEEP_BYTES = 64 * 1024;
let scratch = Buffer.allocUnsafeSlow(4 * 1024);

type Utf8Codec = { utf8Write(text: string, offset: number): number; utf8Slice(start: number, end: number): string };
const utf8Slice = (Buffer.prototype as unknown as Utf8Codec).utf8Slice;

function writeLength(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 24) & 0xff;
}

function readLength(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x100_0000;
}

/** One message as a framed chunk; valid until the next call (the scratch buffer is reused). */
export function framedMessage(message: string | Uint8Array): Uint8Array {
  if (typeof message !== "string") {
    const out = new Uint8Array(4 + message.byteLength);
    writeLength(out, 0, message.byteLength);
    out.set(message, 4);
    return out;
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit.
  let buf = scratch;
  const worst = 4 + message.length * 3;
  if (worst > buf.length) {
    if (worst <= SCRATCH_KEEP_BYTES) buf = scratch = Buffer.allocUnsafeSlow(Math.max(worst, buf.length * 2));
    else buf = Buffer.allocUnsafeSlow(4 + Buffer.byteLength(message, "utf8"));
  }
  const n = (buf as unknown as Utf8Codec).utf8Write(message, 4);
  writeLength(buf, 0, n);
  return buf.subarray(0, 4 + n);
}

/**
 * A frame its writer offers in parts (its header first): the bytes so far,
 * until it is whole. A transport that sends whole messages keeps one while a
 * frame is split across writes.
 */
export class FrameParts {
  #buf = new Uint8Array(4);
  #length = 0;

  /** Takes what it can of the frame from `bytes[at, end)`; returns where it stopped. */
  take(bytes: Uint8Array, at: number, end: number): number {
    if (this.#length < 4) {
      const take = Math.min(4 - this.#length, end - at);
      this.#buf.set(bytes.subarray(at, at + take), this.#length);
      this.#length += take;
      at += take;
      if (this.#length < 4) return at;
      const whole = new Uint8Array(4 + readLength(this.#buf, 0));
      whole.set(this.#buf.subarray(0, 4));
      this.#buf = whole;
    }
    const take = Math.min(this.#buf.byteLength - this.#length, end - at);
    this.#buf.set(bytes.subarray(at, at + take), this.#length);
    this.#length += take;
    return at + take;
  }

  /** The whole frame (header and body), once every byte is in; else undefined. */
  get whole(): Uint8Array | undefined {
    return this.#length >= 4 && this.#length === this.#buf.byteLength ? this.#buf : undefined;
  }
}

export class WebSocketConn implements Conn {
  readonly id = nextConnId();
  peer: WebSocketPeer | undefined;
  #closed = false;
  #ending = false;
  #wantDrain = false;
  #paused = false;
  /** Messages (framed) that arrived while paused, and their bytes. */
  #held: Uint8Array[] | undefined;
  #heldBytes = 0;
  #releaseQueued = false;
  /** A frame written only in part (a caller may split a frame across writes). */
  #partial: FrameParts | undefined;

  constructor(
    readonly remote: Endpoint,
    readonly events: SocketEvents,
    /** Bytes held while paused before the connection is closed (read at each check). */
    readonly maxPaused: () => number,
    public context: unknown = undefined,
  ) {}

  /** The runtime's socket is open. */
  opened(peer: WebSocketPeer): void {
    this.peer = peer;
    this.events.open?.(this);
  }

  /** One message from the peer. */
  received(message: string | Uint8Array): void {
    if (this.#closed) return;
    const chunk = framedMessage(message);
    if (!this.#paused && this.#held === undefined) return this.events.data(this, chunk);
    this.#heldBytes += chunk.byteLength;
    const limit = this.maxPaused();
    if (this.#heldBytes > limit) {
      return this.destroy(new Error(`${this.#heldBytes} bytes of messages arrived while reading was paused, limit ${limit}: a WebSocket cannot hold its sender back`));
    }
    // A copy (not `slice`: on a node:buffer Buffer, which the chunk is, that is a view of reused memory).
    (this.#held ??= []).push(new Uint8Array(chunk));
    if (!this.#paused) this.#queueRelease();
  }

  write(bytes: Uint8Array, start: number, end: number): number {
    const peer = this.peer;
    if (peer === undefined || this.#closed || this.#ending) return 0;
    // A turn's frames leave in one write, as they do on a socket.
    if (peer.batch !== undefined) return peer.batch(() => this.#writeFrames(peer, bytes, start, end));
    return this.#writeFrames(peer, bytes, start, end);
  }

  #writeFrames(peer: WebSocketPeer, bytes: Uint8Array, start: number, end: number): number {
    let at = start;
    while (at < end) {
      if (peer.bufferedAmount() > HIGH_WATER_BYTES) {
        this.#wantDrain = true;
        peer.watchDrain();
        break;
      }
      if (this.#partial !== undefined || end - at < 4 || at + 4 + readLength(bytes, at) > end) {
        at = this.#takePartial(bytes, at, end);
        continue;
      }
      const n = readLength(bytes, at);
      if (!this.#send(utf8Slice.call(bytes, at + 4, at + 4 + n))) return at - start;
      at += 4 + n;
    }
    return at - start;
  }

  /** Takes bytes of a frame that is not whole in this write; sends it once it is. */
  #takePartial(bytes: Uint8Array, at: number, end: number): number {
    const parts = (this.#partial ??= new FrameParts());
    at = parts.take(bytes, at, end);
    const whole = parts.whole;
    if (whole !== undefined) {
      this.#partial = undefined;
      this.#send(utf8Slice.call(whole, 4, whole.byteLength));
    }
    return at;
  }

  #send(text: string): boolean {
    if (this.peer!.sendText(text)) return true;
    // Never expected (the runtime's own limit is off): a message it dropped must not go unnoticed.
    this.destroy(new Error("the WebSocket server dropped a message"));
    return false;
  }

  /** The runtime wrote out what it held: take frames again if a write stopped. */
  drained(): void {
    if (!this.#wantDrain || this.#closed) return;
    this.#wantDrain = false;
    this.events.drain?.(this);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.peer?.pause?.();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.peer?.resume?.();
    if (this.#held !== undefined) this.#queueRelease();
  }

  /** Hands over what was held, after the caller's turn (as a socket's reads come after its resume). */
  #queueRelease(): void {
    if (this.#releaseQueued) return;
    this.#releaseQueued = true;
    queueMicrotask(() => {
      this.#releaseQueued = false;
      const held = this.#held;
      if (held === undefined) return;
      let i = 0;
      while (i < held.length && !this.#paused && !this.#closed) {
        const chunk = held[i]!;
        held[i++] = undefined as unknown as Uint8Array;
        this.#heldBytes -= chunk.byteLength;
        this.events.data(this, chunk);
      }
      if (i === held.length) {
        this.#held = undefined;
        this.#heldBytes = 0;
      } else this.#held = held.slice(i);
    });
  }

  end(kind: CloseKind = "normal"): void {
    if (this.#closed || this.#ending) return;
    this.#ending = true;
    // A close frame goes after every message already sent.
    this.peer?.close(CLOSE_CODES[kind]);
  }

  destroy(err?: Error): void {
    if (this.#closed) return;
    this.peer?.terminate();
    this.closed(undefined, undefined, err);
  }

  /** The runtime's socket closed, with the peer's close code when it sent one. */
  closed(code?: number, reason?: string, err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = undefined;
    if (err === undefined && !this.#ending && code !== undefined && !CLEAN_CLOSES.has(code)) {
      err = new Error(`closed with code ${code}${reason ? ` (${reason})` : ""}`);
    }
    this.events.close(this, err);
  }
}
