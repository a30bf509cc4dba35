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
const MAX_FRAME_BODY_BYTES = 0xffff_ffff;
/** UTF-8 needs at most 4 bytes for one character. */
const MAX_CHAR_BYTES = 4;
const pool: Buffer[] = [];

type Utf8Writer = { utf8Write?: (text: string, offset: number) => number };
// Buffer#utf8Write (Node, Bun and Deno's node:buffer all have it) skips the
// encoding dispatch of Buffer#write: ~40% less per frame on JavaScriptCore.
const utf8Write: (buf: Buffer, text: string, offset: number) => number =
  typeof (Buffer.prototype as Utf8Writer).utf8Write === "function"
    ? (buf, text, offset) => (buf as Utf8Writer).utf8Write!(text, offset)
    : (buf, text, offset) => buf.write(text, offset, "utf8");
let pooledBytes = 0;

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
  // Doubling keeps a growing backlog (a slow reader) from being copied over and over.
  return Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, min, previous * 2));
}

function recycle(buf: Buffer): void {
  if (pooledBytes + buf.length > MAX_POOLED_BYTES) return;
  pool.push(buf);
  pooledBytes += buf.length;
}

export class OutBuffer {
  #buf: Buffer | undefined;
  #start = 0;
  #end = 0;

  get bytes(): number {
    return this.#end - this.#start;
  }

  get empty(): boolean {
    return this.#end === this.#start;
  }

  push(bytes: Uint8Array): void {
    const n = bytes.byteLength;
    if (n === 0) return;
    const at = this.#room(n);
    this.#buf!.set(bytes, at);
    this.#end = at + n;
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
    let at = this.#room(4 + text.length + more.length + last.length + MAX_CHAR_BYTES);
    let n = this.#writeParts(at + 4, text, more, last, true);
    if (n < 0) {
      // A part may not have fitted: measure, make exact room, write again.
      const exact = Buffer.byteLength(text, "utf8") + Buffer.byteLength(more, "utf8") + Buffer.byteLength(last, "utf8");
      at = this.#room(4 + exact);
      n = this.#writeParts(at + 4, text, more, last, false);
    }
    if (n > MAX_FRAME_BODY_BYTES) throw new RangeError(`frame body of ${n} bytes does not fit a 4-byte length`);
    const buf = this.#buf!;
    buf[at] = n & 0xff;
    buf[at + 1] = (n >>> 8) & 0xff;
    buf[at + 2] = (n >>> 16) & 0xff;
    buf[at + 3] = (n >>> 24) & 0xff;
    this.#end = at + 4 + n;
  }

  /**
   * Encodes the parts from `from` on; returns the bytes written, or -1 when
   * `checked` and the space left after a part is too small to be sure it all
   * fitted (utf8Write stops short only when the next character does not fit).
   */
  #writeParts(from: number, a: string, b: string, c: string, checked: boolean): number {
    const buf = this.#buf!;
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

  /** Everything queued, as a view valid until the next push or consume. */
  peek(): Uint8Array {
    return this.#buf === undefined ? new Uint8Array(0) : this.#buf.subarray(this.#start, this.#end);
  }

  /** Drops the first `n` bytes (those the socket took). */
  consume(n: number): void {
    this.#start += n;
    if (this.#start >= this.#end) this.clear();
  }

  /**
   * Removes and returns everything queued, as a copy the caller owns (a write
   * still in flight may read it), so the buffer goes back to the pool: one
   * allocation of the exact size, not a fresh block per write.
   */
  takeAll(): Uint8Array {
    const buf = this.#buf;
    if (buf === undefined) return new Uint8Array(0);
    const out = new Uint8Array(this.#end - this.#start);
    buf.copy(out, 0, this.#start, this.#end);
    this.clear();
    return out;
  }

  clear(): void {
    if (this.#buf !== undefined) recycle(this.#buf);
    this.#buf = undefined;
    this.#start = this.#end = 0;
  }

  /** Makes room for `n` more bytes at the end; returns where they go. */
  #room(n: number): number {
    const buf = this.#buf;
    if (buf === undefined) {
      this.#buf = allocate(n, 0);
      this.#start = this.#end = 0;
      return 0;
    }
    if (this.#end + n <= buf.length) return this.#end;
    const used = this.#end - this.#start;
    const next = used + n <= buf.length && this.#start > 0 ? buf : allocate(used + n, buf.length);
    buf.copy(next, 0, this.#start, this.#end);
    if (next !== buf) recycle(buf);
    this.#buf = next;
    this.#start = 0;
    this.#end = used;
    return used;
  }
}
