/**
 * A WebSocket (RFC 6455) spoken by the adapter itself over one of its
 * sockets, as lean as the socket: a turn's frames leave in one write, a
 * read's messages reach the owner in one chunk, and pause stops reading the
 * socket, so the sender is held back as on TCP. The dialled side of
 * `Runtime.connectWebSocket` (websocket-client.ts) and Deno's listener
 * (websocket-server.ts) are this class after their handshakes; they differ
 * only in the rule for masks (a client masks what it sends, a server never
 * does) and in what a close says.
 *
 * Frames in and out are framed as everywhere else: a 4-byte little-endian
 * length, then the message's bytes. Text and binary messages come in
 * (fragments joined), text messages go out; ping is answered, close is
 * returned.
 * @module
 */
import { randomFillSync } from "node:crypto";
import { nextConnId } from "./conn-id.ts";
import type { CloseKind, Conn, Endpoint, SocketEvents } from "./types.ts";
import { CLOSE_CODES, FrameParts } from "./websocket-conn.ts";

/** Close codes that are no error. */
const CLEAN_CLOSES = new Set([1000, 1001, 1005]);
/** RFC 6455 §7.4.1: the peer broke the protocol. */
const PROTOCOL_ERROR = 1002;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;
const KNOWN_OPCODES = new Set([OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG]);

/** Masking keys, drawn from the system's random source in batches. */
const keys = new Uint8Array(4096);
let keyAt = keys.length;

function nextKey(): number {
  if (keyAt + 4 > keys.length) {
    randomFillSync(keys);
    keyAt = 0;
  }
  keyAt += 4;
  return keyAt - 4;
}

function readLength(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x100_0000;
}

function writeLength(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 24) & 0xff;
}

/**
 * XORs `n` bytes of `buf` at `at` with the 4-byte key at `key[k..k+3]`, in
 * place: whole aligned words at a time (`words` views `buf`'s memory), the
 * ends byte by byte.
 */
function mask(buf: Uint8Array, words: Int32Array, at: number, n: number, key: Uint8Array, k: number): void {
  let i = 0;
  for (; i < n && ((at + i) & 3) !== 0; i++) buf[at + i]! ^= key[k + (i & 3)]!;
  // The key as a little-endian word, turned to start where the aligned part does.
  const word = key[k + (i & 3)]! | (key[k + ((i + 1) & 3)]! << 8) | (key[k + ((i + 2) & 3)]! << 16) | (key[k + ((i + 3) & 3)]! << 24);
  const end = (at + n) >> 2;
  for (let w = (at + i) >> 2; w < end; w++) words[w]! ^= word;
  for (i = Math.max(i, (end << 2) - at); i < n; i++) buf[at + i]! ^= key[k + (i & 3)]!;
}

/**
 * Where a read's messages are framed: one buffer for every connection,
 * reused (the owner copies what it keeps of a chunk), grown to the largest
 * read so far; `scratchWords` views it for unmasking.
 */
let scratch = new Uint8Array(64 * 1024);
let scratchWords = new Int32Array(scratch.buffer);

function framedOut(atLeast: number): Uint8Array {
  if (scratch.byteLength < atLeast) {
    scratch = new Uint8Array(Math.max(atLeast + 4, scratch.byteLength * 2));
    scratchWords = new Int32Array(scratch.buffer, 0, scratch.byteLength >> 2);
  }
  return scratch;
}

/**
 * Where a write's frames are made, shared by every connection: the socket
 * copies what it takes and `send` what it does not, so nothing outlives the
 * call, and an idle connection holds no buffer. `outWords` views it for masking.
 */
let out = new Uint8Array(16 * 1024);
let outWords = new Int32Array(out.buffer);

function outOf(atLeast: number): Uint8Array {
  if (out.byteLength < atLeast) {
    out = new Uint8Array(Math.max(atLeast + 4, out.byteLength * 2));
    outWords = new Int32Array(out.buffer, 0, out.byteLength >> 2);
  }
  return out;
}

/** One received frame's masking key, copied out of the read (it may sit at any offset). */
const frameKey = new Uint8Array(4);

export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

export type WebSocketRole = "client" | "server";

export class SocketWebSocket implements Conn {
  readonly id = nextConnId();
  socket!: Conn;
  protected open = false;
  #closed = false;
  #ending = false;
  #closeCode: number | undefined;
  #closeReason = "";
  /** Bytes read and not yet made into messages (a frame split across reads). */
  protected rest: Uint8Array | undefined;
  /** A message in fragments so far. */
  #fragments: Uint8Array | undefined;
  /** Frame bytes made from a write that the socket did not take yet; nothing more is taken until they are written. */
  #pending: Uint8Array | undefined;
  #wantDrain = false;
  /** A frame written only in part (a caller may split a frame across writes). */
  #partial: FrameParts | undefined;

  constructor(
    readonly role: WebSocketRole,
    readonly remote: Endpoint,
    readonly events: SocketEvents,
    public context: unknown,
    /** The largest message taken; a larger one is refused with 1009 before it is read whole. */
    readonly maxMessageBytes = Infinity,
  ) {}

  /** The handshake is done: frames flow from here, `rest` first. */
  protected opened(rest?: Uint8Array): void {
    this.open = true;
    this.events.open?.(this);
    if (rest !== undefined && rest.byteLength > 0 && !this.#closed) this.received(rest);
  }

  /** Bytes from the socket once open. */
  received(chunk: Uint8Array): void {
    if (this.#closed || this.#ending) return;
    const bytes = this.rest === undefined ? chunk : concat(this.rest, chunk);
    this.rest = undefined;
    this.#frames(bytes);
  }

  /** Makes every whole message in `bytes` into framed chunks, handed over in one call. */
  #frames(bytes: Uint8Array): void {
    // A frame's header is at least 2 bytes, a framed chunk's 4: at most twice the bytes read, plus what was in fragments.
    const out = framedOut(2 * bytes.byteLength + (this.#fragments?.byteLength ?? 0));
    const server = this.role === "server";
    let outLength = 0;
    let at = 0;
    while (bytes.byteLength - at >= 2) {
      const b0 = bytes[at]!;
      const b1 = bytes[at + 1]!;
      const masked = (b1 & 0x80) !== 0;
      if (masked !== server) return this.#protocolError(server ? "the client sent an unmasked frame" : "the server masked a frame");
      let n = b1 & 0x7f;
      let head = 2;
      if (n === 126) {
        if (bytes.byteLength - at < 4) break;
        n = (bytes[at + 2]! << 8) | bytes[at + 3]!;
        head = 4;
      } else if (n === 127) {
        if (bytes.byteLength - at < 10) break;
        n = bytes[at + 6]! * 0x100_0000 + ((bytes[at + 7]! << 16) | (bytes[at + 8]! << 8) | bytes[at + 9]!);
        if (bytes[at + 2]! | bytes[at + 3]! | bytes[at + 4]! | bytes[at + 5]!) n = Infinity;
        head = 10;
      }
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (!KNOWN_OPCODES.has(opcode)) return this.#protocolError(`unknown opcode ${opcode}`);
      // No extension is ever agreed on, so no frame may use the bits they own.
      if ((b0 & 0x70) !== 0) return this.#protocolError("a reserved bit is set, and no extension was agreed on");
      if (opcode < OP_CLOSE && n + (this.#fragments?.byteLength ?? 0) > this.maxMessageBytes) {
        return this.#refuse(CLOSE_CODES.too_big, `a message above ${this.maxMessageBytes} bytes`);
      }
      if (masked) head += 4;
      if (bytes.byteLength - at < head + n) break;
      const from = at + head;
      at = from + n;
      let payload = bytes.subarray(from, from + n);
      if (masked) {
        frameKey.set(bytes.subarray(from - 4, from));
        // Unmasked where it is framed (or in a copy of its own for a control frame or a fragment).
        const into = opcode >= OP_CLOSE || !fin || this.#fragments !== undefined ? new Uint8Array(n) : undefined;
        if (into !== undefined) {
          into.set(payload);
          mask(into, new Int32Array(into.buffer, 0, n >> 2), 0, n, frameKey, 0);
          payload = into;
        } else {
          writeLength(out, outLength, n);
          out.set(payload, outLength + 4);
          mask(out, scratchWords, outLength + 4, n, frameKey, 0);
          outLength += 4 + n;
          continue;
        }
      }
      if (opcode === OP_PING) {
        this.#control(OP_PONG, payload);
        continue;
      }
      if (opcode === OP_PONG) continue;
      if (opcode === OP_CLOSE) {
        this.#closeCode = n >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
        this.#closeReason = n > 2 ? new TextDecoder().decode(payload.subarray(2)) : "";
        if (!this.#ending) this.#control(OP_CLOSE, payload.subarray(0, Math.min(n, 2)));
        this.#ending = true;
        this.socket.end();
        break;
      }
      if (!fin || this.#fragments !== undefined) {
        this.#fragments = this.#fragments === undefined ? payload.slice() : concat(this.#fragments, payload);
        if (!fin) continue;
        const whole = this.#fragments;
        this.#fragments = undefined;
        writeLength(out, outLength, whole.byteLength);
        out.set(whole, outLength + 4);
        outLength += 4 + whole.byteLength;
        continue;
      }
      writeLength(out, outLength, n);
      out.set(payload, outLength + 4);
      outLength += 4 + n;
    }
    if (at < bytes.byteLength && !this.#ending) this.rest = bytes.slice(at);
    if (outLength > 0) this.events.data(this, out.subarray(0, outLength));
  }

  #protocolError(why: string): void {
    if (this.role === "server") return this.#refuse(PROTOCOL_ERROR, why);
    this.socket.destroy(new Error(`WebSocket protocol error: ${why}`));
  }

  /** Ends the connection with `code` and reads nothing more; the owner hears why in its close. */
  #refuse(code: number, why: string): void {
    this.#closeCode = code;
    this.#closeReason = why;
    this.rest = undefined;
    this.#fragments = undefined;
    if (!this.#ending) this.#control(OP_CLOSE, new Uint8Array([code >> 8, code & 0xff]));
    this.#ending = true;
    this.socket.end();
  }

  /** Sends one control frame (masked when this is the client). */
  #control(opcode: number, payload: Uint8Array): void {
    const client = this.role === "client";
    const head = client ? 6 : 2;
    const out = new Uint8Array(head + payload.byteLength);
    out[0] = 0x80 | opcode;
    out[1] = (client ? 0x80 : 0) | payload.byteLength;
    out.set(payload, head);
    if (client) {
      const k = nextKey();
      out.set(keys.subarray(k, k + 4), 2);
      for (let i = 0; i < payload.byteLength; i++) out[6 + i]! ^= keys[k + (i & 3)]!;
    }
    this.send(out, out.byteLength);
  }

  /** Writes `n` bytes of `bytes` (a fresh array, or the shared output, which is copied if kept). */
  protected send(bytes: Uint8Array, n: number): void {
    if (this.#pending !== undefined) {
      this.#pending = concat(this.#pending, bytes.subarray(0, n));
      return;
    }
    const taken = this.socket.write(bytes, 0, n);
    if (taken < n) {
      this.#pending = bytes.slice(taken, n);
      this.#wantDrain = true;
    }
  }

  write(bytes: Uint8Array, start: number, end: number): number {
    if (!this.open || this.#closed || this.#ending) return 0;
    if (this.#pending !== undefined) {
      this.#wantDrain = true;
      return 0;
    }
    let at = start;
    if (this.#partial !== undefined) {
      at = this.#takePartial(bytes, at, end);
      if (this.#partial !== undefined || this.#pending !== undefined) return at - start;
    }
    let whole = at;
    while (end - whole >= 4) {
      const n = readLength(bytes, whole);
      if (whole + 4 + n > end) break;
      whole += 4 + n;
    }
    if (whole > at) this.#sendFrames(bytes, at, whole);
    at = whole;
    // A frame the caller offers in parts: its bytes so far are kept, and it goes out once whole.
    if (at < end && this.#pending === undefined) at = this.#takePartial(bytes, at, end);
    return at - start;
  }

  /** Takes bytes of a frame that is not whole in this write; sends it once it is. */
  #takePartial(bytes: Uint8Array, at: number, end: number): number {
    const parts = (this.#partial ??= new FrameParts());
    at = parts.take(bytes, at, end);
    const whole = parts.whole;
    if (whole !== undefined) {
      this.#partial = undefined;
      this.#sendFrames(whole, 0, whole.byteLength);
    }
    return at;
  }

  /** Sends the whole frames in `bytes[start, end)` as text messages, in one write. */
  #sendFrames(bytes: Uint8Array, start: number, end: number): void {
    const client = this.role === "client";
    const maskBytes = client ? 4 : 0;
    let size = 0;
    for (let f = start; f < end; ) {
      const n = readLength(bytes, f);
      size += n + maskBytes + (n < 126 ? 2 : n < 65536 ? 4 : 10);
      f += 4 + n;
    }
    const out = outOf(size);
    const maskBit = client ? 0x80 : 0;
    let o = 0;
    for (let f = start; f < end; ) {
      const n = readLength(bytes, f);
      out[o++] = 0x80 | OP_TEXT;
      if (n < 126) out[o++] = maskBit | n;
      else if (n < 65536) {
        out[o++] = maskBit | 126;
        out[o++] = n >>> 8;
        out[o++] = n & 0xff;
      } else {
        out[o++] = maskBit | 127;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = (n >>> 24) & 0xff;
        out[o++] = (n >>> 16) & 0xff;
        out[o++] = (n >>> 8) & 0xff;
        out[o++] = n & 0xff;
      }
      const from = f + 4;
      if (client) {
        const k = nextKey();
        out[o++] = keys[k]!;
        out[o++] = keys[k + 1]!;
        out[o++] = keys[k + 2]!;
        out[o++] = keys[k + 3]!;
        out.set(bytes.subarray(from, from + n), o);
        mask(out, outWords, o, n, keys, k);
      } else {
        out.set(bytes.subarray(from, from + n), o);
      }
      o += n;
      f = from + n;
    }
    this.send(out, o);
  }

  socketDrain(): void {
    const pending = this.#pending;
    if (pending === undefined) return;
    const taken = this.socket.write(pending, 0, pending.byteLength);
    if (taken < pending.byteLength) {
      this.#pending = pending.subarray(taken);
      return;
    }
    this.#pending = undefined;
    if (this.#wantDrain && !this.#ending) {
      this.#wantDrain = false;
      this.events.drain?.(this);
    }
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes with the code for `kind` (a client says no more than "normal"), after every frame already written. */
  end(kind: CloseKind = "normal"): void {
    if (this.#closed || this.#ending || !this.open) return this.socket.end();
    this.#ending = true;
    const code = CLOSE_CODES[this.role === "client" ? "normal" : kind];
    this.#control(OP_CLOSE, new Uint8Array([code >> 8, code & 0xff]));
    this.socket.end();
  }

  destroy(err?: Error): void {
    this.socket.destroy(err);
  }

  /** The socket closed: the owner hears it once, with an error unless the close was clean. */
  socketClosed(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.open) return this.notOpened(err);
    const code = this.#closeCode;
    if (err === undefined && code !== undefined && !CLEAN_CLOSES.has(code)) {
      err = new Error(`closed with code ${code}${this.#closeReason ? ` (${this.#closeReason})` : ""}`);
    }
    this.events.close(this, err);
  }

  /** The socket closed before the handshake was done. */
  protected notOpened(_err?: Error): void {}
}

/** A socket's events, forwarded to the WebSocket it carries (its context). */
export const CARRIER_EVENTS: SocketEvents = {
  data(socket, chunk) {
    (socket.context as SocketWebSocket).received(chunk);
  },
  drain(socket) {
    (socket.context as SocketWebSocket).socketDrain();
  },
  close(socket, err) {
    (socket.context as SocketWebSocket).socketClosed(err);
  },
};
