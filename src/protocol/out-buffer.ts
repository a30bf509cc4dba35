/**
 * Bytes waiting for a socket, with frames encoded in place. The runtime
 * adapters keep one per connection (what `Conn.write` / `Conn.writeFrame`
 * accepted and the socket has not taken yet) and flush it once per event-loop
 * turn, so many frames written in one turn leave in one system call; the
 * handler SDK joins a read's answers in one the same way.
 *
 * Frames are encoded straight into the buffer (`Buffer#write` at an offset):
 * no allocation and no copy per frame, which on JavaScriptCore is most of what
 * framing costs. An idle connection holds no buffer; a busy one borrows a
 * block from a small shared pool and gives it back once everything is written.
 * @module
 */
import { Buffer } from "node:buffer";

const BLOCK_BYTES = 16 * 1024;
/**
 * Bytes kept for reuse across connections: the blocks of those busy in one
 * turn under load. Small, as it is held even when every client is idle.
 */
const MAX_POOLED_BYTES = 1024 * 1024;
/** A block that fills is followed by one twice its size, up to this. */
const MAX_CHAIN_BLOCK_BYTES = 256 * 1024;
const MAX_FRAME_BODY_BYTES = 0xffff_ffff;
/** UTF-8 needs at most 4 bytes for one character. */
const MAX_CHAR_BYTES = 4;
const pool: Buffer[] = [];

type Utf8Writer = { utf8Write?: (text: string, offset: number) => number };
// Buffer#utf8Write (Node, Bun and Deno's node:buffer all have it) skips the
// encoding dispatch of Buffer#write, a large share of a frame's cost on JavaScriptCore.
const utf8Write: (buf: Buffer, text: string, offset: number) => number =
  typeof (Buffer.prototype as Utf8Writer).utf8Write === "function"
    ? (buf, text, offset) => (buf as Utf8Writer).utf8Write!(text, offset)
    : (buf, text, offset) => buf.write(text, offset, "utf8");
/** Whether Buffer#utf8Write is the runtime's own (native) code, not a script over TextEncoder. */
const NATIVE_UTF8_WRITE = /\[native code\]/.test(Function.prototype.toString.call((Buffer.prototype as Utf8Writer).utf8Write ?? Buffer.prototype.write));
const encoder = new TextEncoder();
let pooledBytes = 0;
const EMPTY = new Uint8Array(0);

function allocate(min: number, previous: number): Buffer {
  // The largest pooled buffer: a connection that wrote a lot in the last turn
  // likely does again, and growing a small block means copying it each time.
  let best = -1;
  for (let i = 0; i < pool.length; i++) {
    if (pool[i]!.length >= min && (best < 0 || pool[i]!.length > pool[best]!.length)) best = i;
  }
  if (best >= 0) {
    const buf = pool[best]!;
    pool[best] = pool[pool.length - 1]!;
    pool.pop();
    pooledBytes -= buf.length;
    return buf;
  }
  return Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, min, previous * 2));
}

function recycle(buf: Buffer): void {
  if (pooledBytes + buf.length > MAX_POOLED_BYTES) return;
  pool.push(buf);
  pooledBytes += buf.length;
}

/** A block and the bytes of it still queued: [start, end). */
interface Segment {
  buf: Buffer;
  start: number;
  end: number;
}

const NO_SEGMENTS: Segment[] = [];

export class OutBuffer {
  /**
   * Oldest first; frames go into the last. A full block is followed by a new
   * one rather than grown: a backlog (a reader slower than the turn) is never
   * copied again, however many turns it waits.
   */
  #segments: Segment[] = NO_SEGMENTS;
  #head = 0;
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#bytes === 0;
  }

  push(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    if (n === 0) return;
    const seg = this.#room(n);
    seg.buf.set(bytes, seg.end);
    seg.end += n;
    this.#bytes += n;
  }

  /**
   * Appends one Bester frame (PROTOCOL.md §1): the UTF-8 byte length as 4
   * bytes, little-endian, then the text as UTF-8. The text is `text`, `more`
   * and `last` joined: a frame built from parts is encoded part by part, so
   * no joined string is made (a joined string is flattened before encoding,
   * which costs more than the join). Each part must be well-formed UTF-16 on
   * its own (no surrogate pair split between parts). The text is not checked.
   */
  pushFrame(text: string, more = "", last = ""): void {
    // Room for the shortest possible encoding (all ASCII) first: reserving the
    // worst case (3 bytes per UTF-16 unit) would triple every large frame's claim.
    let seg = this.#room(4 + text.length + more.length + last.length + MAX_CHAR_BYTES);
    let at = seg.end;
    let n = writeParts(seg.buf, at + 4, text, more, last, true);
    if (n < 0) {
      // A part may not have fitted: measure, make exact room, write again.
      const exact = Buffer.byteLength(text, "utf8") + Buffer.byteLength(more, "utf8") + Buffer.byteLength(last, "utf8");
      seg = this.#room(4 + exact);
      at = seg.end;
      n = writeParts(seg.buf, at + 4, text, more, last, false);
    }
    if (n > MAX_FRAME_BODY_BYTES) throw new RangeError(`frame body of ${n} bytes does not fit a 4-byte length`);
    const buf = seg.buf;
    buf[at] = n & 0xff;
    buf[at + 1] = (n >>> 8) & 0xff;
    buf[at + 2] = (n >>> 16) & 0xff;
    buf[at + 3] = (n >>> 24) & 0xff;
    seg.end = at + 4 + n;
    this.#bytes += 4 + n;
  }

  /**
   * Offers what is queued to `to`, oldest first, one write per block, and
   * drops what it took; stops when it takes less than offered. True when
   * everything went.
   */
  writeTo(to: { write(bytes: Uint8Array, start: number, end: number): number }): boolean {
    while (this.#bytes > 0) {
      const seg = this.#segments[this.#head]!;
      const length = seg.end - seg.start;
      const taken = to.write(seg.buf, seg.start, seg.end);
      this.consume(taken);
      if (taken < length) return false;
    }
    return true;
  }

  /** Drops the first `n` bytes (those the writer took), at most the oldest block's. */
  consume(n: number): void {
    if (n <= 0) return;
    const seg = this.#segments[this.#head]!;
    seg.start += n;
    this.#bytes -= n;
    if (this.#bytes === 0) return this.clear();
    if (seg.start < seg.end) return;
    // The oldest block is written out: back to the pool, the next one is oldest.
    recycle(seg.buf);
    this.#segments[this.#head++] = undefined as unknown as Segment;
    if (this.#head >= 16 && this.#head * 2 >= this.#segments.length) {
      this.#segments = this.#segments.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * Removes and returns everything queued, as a copy the caller owns (a write
   * still in flight may read it), so the blocks go back to the pool.
   */
  takeAll(): Uint8Array {
    if (this.#bytes === 0) return EMPTY;
    const out = new Uint8Array(this.#bytes);
    let at = 0;
    for (let i = this.#head; i < this.#segments.length; i++) {
      const seg = this.#segments[i]!;
      seg.buf.copy(out, at, seg.start, seg.end);
      at += seg.end - seg.start;
    }
    this.clear();
    return out;
  }

  clear(): void {
    for (let i = this.#head; i < this.#segments.length; i++) recycle(this.#segments[i]!.buf);
    this.#segments = NO_SEGMENTS;
    this.#head = 0;
    this.#bytes = 0;
  }

  /** The segment `n` more bytes go to, with room for them at its end. */
  #room(n: number): Segment {
    const segments = this.#segments;
    const last = segments.length > this.#head ? segments[segments.length - 1]! : undefined;
    if (last !== undefined) {
      if (last.end + n <= last.buf.length) return last;
      if (last.start === last.end) {
        // Nothing queued in it (a frame that did not fit on the first try): replace it.
        const previous = last.buf.length;
        recycle(last.buf);
        last.buf = allocate(n, previous);
        last.start = last.end = 0;
        return last;
      }
    }
    // Doubling keeps a long run of frames in few blocks (few writes); the cap
    // keeps a backlog in blocks the pool can take back.
    const seg: Segment = { buf: allocate(n, Math.min(last?.buf.length ?? 0, MAX_CHAIN_BLOCK_BYTES / 2)), start: 0, end: 0 };
    if (segments === NO_SEGMENTS) this.#segments = [seg];
    else segments.push(seg);
    return seg;
  }
}

/**
 * Encodes the parts at `from`; returns the bytes written, or -1 when
 * `checked` and the space left after a part is too small to be sure it all
 * fitted (utf8Write stops short only when the next character does not fit).
 */
function writeParts(buf: Buffer, from: number, a: string, b: string, c: string, checked: boolean): number {
  if (!NATIVE_UTF8_WRITE) {
    // One encodeInto of the joined text into a plain view: where Buffer#utf8Write is itself
    // written in JavaScript over encodeInto (Deno), each call pays for a Buffer view and the
    // encoder's checks, which cost more than joining the parts.
    const text = b === "" && c === "" ? a : a + b + c;
    const done = encoder.encodeInto(text, new Uint8Array(buf.buffer, buf.byteOffset + from, buf.length - from));
    return done.read < text.length ? -1 : done.written;
  }
  let end = from + utf8Write(buf, a, from);
  if (checked && buf.length - end < MAX_CHAR_BYTES) return -1;
  if (b !== "") {
    end += utf8Write(buf, b, end);
    if (checked && buf.length - end < MAX_CHAR_BYTES) return -1;
  }
  if (c !== "") {
    end += utf8Write(buf, c, end);
    if (checked && buf.length - end < MAX_CHAR_BYTES) return -1;
  }
  return end - from;
}
