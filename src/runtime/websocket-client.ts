/**
 * The adapter's own WebSocket client (RFC 6455), over its TCP sockets: the
 * dialled side of `Runtime.connectWebSocket`, as lean as a socket. The
 * runtimes' `WebSocket` class fires one event per message and sends each in
 * a write of its own, which costs a client that drives many connections
 * (the bench's load generator) more than the gateway it measures. Here a
 * turn's frames leave in one write, a read's messages reach the owner in
 * one chunk, and pause stops reading the socket, as on TCP.
 *
 * Only what a client needs: the upgrade, text frames out (masked, as a
 * client must), text and binary messages in (fragments joined), ping,
 * close. Frames in and out are framed as everywhere else: a 4-byte
 * little-endian length, then the message's bytes.
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, randomFillSync } from "node:crypto";
import { nextConnId } from "./conn-id.ts";
import type { CloseKind, Conn, ConnectOptions, Endpoint, SocketEvents, WebSocketConnectOptions } from "./types.ts";
import { CLOSE_CODES } from "./websocket-conn.ts";

/** The runtime's own dial, which this rides on. */
type Connect = (to: Endpoint, events: SocketEvents, timeoutMs?: number, options?: ConnectOptions) => Promise<Conn>;

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** A server's answer to the upgrade is a few hundred bytes; more is not a WebSocket server. */
const MAX_HANDSHAKE_BYTES = 16 * 1024;
/** Close codes that are no error. */
const CLEAN_CLOSES = new Set([1000, 1001, 1005]);

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

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
 * Where a read's messages are framed: one buffer for every connection,
 * reused (the owner copies what it keeps of a chunk), grown to the largest
 * read so far.
 */
let framedScratch = new Uint8Array(64 * 1024);

function framedOut(atLeast: number): Uint8Array {
  if (framedScratch.byteLength < atLeast) framedScratch = new Uint8Array(Math.max(atLeast, framedScratch.byteLength * 2));
  return framedScratch;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

class WebSocketClientConn implements Conn {
  readonly id = nextConnId();
  readonly remote: Endpoint;
  socket!: Conn;
  #open = false;
  #closed = false;
  #ending = false;
  #closeCode: number | undefined;
  #closeReason = "";
  /** Bytes read and not yet made into messages (a split frame, or the handshake's answer). */
  #rest: Uint8Array | undefined;
  /** A message in fragments so far. */
  #fragments: Uint8Array | undefined;
  /** Frame bytes made from a write that the socket did not take yet; nothing more is taken until they are written. */
  #pending: Uint8Array | undefined;
  #wantDrain = false;
  /** Output made by a write, reused; `#words` views it as 32-bit words, for masking. */
  #out = new Uint8Array(16 * 1024);
  #words = new Int32Array(this.#out.buffer);

  constructor(
    readonly url: URL,
    readonly key: string,
    readonly events: SocketEvents,
    readonly opened: (err?: Error) => void,
    public context: unknown,
  ) {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    this.remote = { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: Number(url.port || (url.protocol === "wss:" ? 443 : 80)) };
  }

  /** The socket is up: ask for the upgrade. */
  socketOpen(socket: Conn): void {
    this.socket = socket;
    const request = [
      `GET ${this.url.pathname}${this.url.search} HTTP/1.1`,
      `Host: ${this.url.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${this.key}`,
      "Sec-WebSocket-Version: 13",
      "",
      "",
    ].join("\r\n");
    const bytes = new TextEncoder().encode(request);
    this.#send(bytes, bytes.byteLength);
  }

  socketData(chunk: Uint8Array): void {
    if (this.#closed) return;
    const bytes = this.#rest === undefined ? chunk : concat(this.#rest, chunk);
    this.#rest = undefined;
    if (!this.#open) return this.#handshake(bytes);
    this.#frames(bytes);
  }

  #handshake(bytes: Uint8Array): void {
    const text = new TextDecoder("latin1").decode(bytes.subarray(0, Math.min(bytes.byteLength, MAX_HANDSHAKE_BYTES)));
    const end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      if (bytes.byteLength >= MAX_HANDSHAKE_BYTES) return this.#fail("no WebSocket answer: the server's reply has no end");
      this.#rest = bytes.slice();
      return;
    }
    const head = text.slice(0, end);
    const status = /^HTTP\/1\.1 (\d{3})[^\r]*/.exec(head);
    if (status?.[1] !== "101") return this.#fail(`the server refused the WebSocket: ${status?.[0] ?? head.slice(0, 80)}`);
    const accept = /\r\nsec-websocket-accept:[ \t]*(\S+)/i.exec(head)?.[1];
    if (accept !== createHash("sha1").update(this.key + GUID).digest("base64")) return this.#fail("the server's Sec-WebSocket-Accept is wrong: not a WebSocket server");
    this.#open = true;
    this.opened();
    this.events.open?.(this);
    if (end + 4 < bytes.byteLength) this.#frames(bytes.subarray(end + 4));
  }

  #fail(why: string): void {
    this.opened(new Error(why));
    this.socket.destroy();
  }

  /** Makes every whole message in `bytes` into framed chunks, handed over in one call. */
  #frames(bytes: Uint8Array): void {
    // A frame's header is at least 2 bytes, a framed chunk's 4: at most twice the bytes read, plus what was in fragments.
    const out = framedOut(2 * bytes.byteLength + (this.#fragments?.byteLength ?? 0));
    let outLength = 0;
    let at = 0;
    while (bytes.byteLength - at >= 2) {
      const b0 = bytes[at]!;
      const b1 = bytes[at + 1]!;
      let n = b1 & 0x7f;
      let head = 2;
      if (n === 126) {
        if (bytes.byteLength - at < 4) break;
        n = (bytes[at + 2]! << 8) | bytes[at + 3]!;
        head = 4;
      } else if (n === 127) {
        if (bytes.byteLength - at < 10) break;
        n = (bytes[at + 6]! * 0x100_0000) + ((bytes[at + 7]! << 16) | (bytes[at + 8]! << 8) | bytes[at + 9]!);
        head = 10;
      }
      if (b1 & 0x80) return this.#protocolError("the server masked a frame");
      if (bytes.byteLength - at < head + n) break;
      const from = at + head;
      at = from + n;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === OP_PING) {
        this.#control(OP_PONG, bytes.subarray(from, from + n));
        continue;
      }
      if (opcode === OP_PONG) continue;
      if (opcode === OP_CLOSE) {
        this.#closeCode = n >= 2 ? (bytes[from]! << 8) | bytes[from + 1]! : 1005;
        this.#closeReason = n > 2 ? new TextDecoder().decode(bytes.subarray(from + 2, from + n)) : "";
        if (!this.#ending) this.#control(OP_CLOSE, bytes.subarray(from, from + Math.min(n, 2)));
        this.#ending = true;
        this.socket.end();
        break;
      }
      if (opcode !== OP_TEXT && opcode !== OP_BINARY && opcode !== OP_CONTINUATION) return this.#protocolError(`unknown opcode ${opcode}`);
      if (!fin || this.#fragments !== undefined) {
        const part = bytes.subarray(from, from + n);
        this.#fragments = this.#fragments === undefined ? part.slice() : concat(this.#fragments, part);
        if (!fin) continue;
        const whole = this.#fragments;
        this.#fragments = undefined;
        writeLength(out, outLength, whole.byteLength);
        out.set(whole, outLength + 4);
        outLength += 4 + whole.byteLength;
        continue;
      }
      writeLength(out, outLength, n);
      out.set(bytes.subarray(from, from + n), outLength + 4);
      outLength += 4 + n;
    }
    if (at < bytes.byteLength && !this.#ending) this.#rest = bytes.slice(at);
    if (outLength > 0) this.events.data(this, out.subarray(0, outLength));
  }

  #protocolError(why: string): void {
    this.socket.destroy(new Error(`WebSocket protocol error: ${why}`));
  }

  /** Sends one control frame (masked, as from a client). */
  #control(opcode: number, payload: Uint8Array): void {
    const out = new Uint8Array(6 + payload.byteLength);
    out[0] = 0x80 | opcode;
    out[1] = 0x80 | payload.byteLength;
    const k = nextKey();
    out.set(keys.subarray(k, k + 4), 2);
    for (let i = 0; i < payload.byteLength; i++) out[6 + i] = payload[i]! ^ keys[k + (i & 3)]!;
    this.#send(out, out.byteLength);
  }

  /** Writes `n` bytes of `bytes` (a fresh array, or the reused output, which is copied if kept). */
  #send(bytes: Uint8Array, n: number): void {
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
    if (!this.#open || this.#closed || this.#ending) return 0;
    if (this.#pending !== undefined) {
      this.#wantDrain = true;
      return 0;
    }
    // Whole frames only: a frame is never split across the owner's blocks.
    let size = 0;
    let at = start;
    while (end - at >= 4) {
      const n = readLength(bytes, at);
      if (at + 4 + n > end) break;
      size += n + (n < 126 ? 6 : n < 65536 ? 8 : 14);
      at += 4 + n;
    }
    const taken = at - start;
    if (taken === 0) return 0;
    if (this.#out.byteLength < size) {
      this.#out = new Uint8Array(Math.max(size + 4, this.#out.byteLength * 2));
      this.#words = new Int32Array(this.#out.buffer, 0, this.#out.byteLength >> 2);
    }
    const out = this.#out;
    let o = 0;
    for (let f = start; f < at; ) {
      const n = readLength(bytes, f);
      out[o++] = 0x80 | OP_TEXT;
      if (n < 126) out[o++] = 0x80 | n;
      else if (n < 65536) {
        out[o++] = 0x80 | 126;
        out[o++] = n >>> 8;
        out[o++] = n & 0xff;
      } else {
        out[o++] = 0x80 | 127;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = 0;
        out[o++] = (n >>> 24) & 0xff;
        out[o++] = (n >>> 16) & 0xff;
        out[o++] = (n >>> 8) & 0xff;
        out[o++] = n & 0xff;
      }
      const k = nextKey();
      out[o++] = keys[k]!;
      out[o++] = keys[k + 1]!;
      out[o++] = keys[k + 2]!;
      out[o++] = keys[k + 3]!;
      const from = f + 4;
      out.set(bytes.subarray(from, from + n), o);
      this.#mask(o, n, k);
      o += n;
      f = from + n;
    }
    this.#send(out, o);
    return taken;
  }

  /** Masks `n` bytes of the output at `at` with key `k` in place: whole aligned words at a time, the ends byte by byte. */
  #mask(at: number, n: number, k: number): void {
    const out = this.#out;
    let i = 0;
    for (; i < n && ((at + i) & 3) !== 0; i++) out[at + i]! ^= keys[k + (i & 3)]!;
    // The key as a little-endian word, turned to start where the aligned part does.
    const word = keys[k + (i & 3)]! | (keys[k + ((i + 1) & 3)]! << 8) | (keys[k + ((i + 2) & 3)]! << 16) | (keys[k + ((i + 3) & 3)]! << 24);
    const words = this.#words;
    const end = (at + n) >> 2;
    for (let w = (at + i) >> 2; w < end; w++) words[w]! ^= word;
    for (i = Math.max(i, (end << 2) - at); i < n; i++) out[at + i]! ^= keys[k + (i & 3)]!;
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

  /** A client says nothing more than "normal" (1000) in its close frame. */
  end(_kind?: CloseKind): void {
    if (this.#closed || this.#ending || !this.#open) return this.socket.end();
    this.#ending = true;
    const code = new Uint8Array([CLOSE_CODES.normal >> 8, CLOSE_CODES.normal & 0xff]);
    this.#control(OP_CLOSE, code);
    this.socket.end();
  }

  destroy(err?: Error): void {
    this.socket.destroy(err);
  }

  socketClosed(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#open) return this.opened(err ?? new Error("the connection closed before the WebSocket upgrade"));
    const code = this.#closeCode;
    if (err === undefined && code !== undefined && !CLEAN_CLOSES.has(code)) {
      err = new Error(`closed with code ${code}${this.#closeReason ? ` (${this.#closeReason})` : ""}`);
    }
    this.events.close(this, err);
  }
}

/** The socket's events, forwarded to the WebSocket it carries (its context). */
const SOCKET_EVENTS: SocketEvents = {
  open(socket) {
    (socket.context as WebSocketClientConn).socketOpen(socket);
  },
  data(socket, chunk) {
    (socket.context as WebSocketClientConn).socketData(chunk);
  },
  drain(socket) {
    (socket.context as WebSocketClientConn).socketDrain();
  },
  close(socket, err) {
    (socket.context as WebSocketClientConn).socketClosed(err);
  },
};

/** Dials `url` (ws: or wss:) over `connect`; resolves once the server took the upgrade. */
export async function dialWebSocket(
  connect: Connect,
  url: string,
  events: SocketEvents,
  timeoutMs: number,
  options: WebSocketConnectOptions = {},
): Promise<Conn> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`'${url}' is not a URL: expected ws://HOST:PORT/PATH or wss://...`);
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") throw new Error(`'${url}' is not a WebSocket URL: expected ws:// or wss://`);
  const key = new Uint8Array(16);
  randomFillSync(key);
  let settle!: (err?: Error) => void;
  const upgraded = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
  const conn = new WebSocketClientConn(parsed, Buffer.from(key).toString("base64"), events, (err) => settle(err), options.context);
  const started = Date.now();
  const tls = parsed.protocol === "wss:" ? { tls: options.tls ?? {} } : {};
  const socket = await connect(conn.remote, SOCKET_EVENTS, timeoutMs, { context: conn, ...tls });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      upgraded,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no WebSocket upgrade from ${url} within ${timeoutMs} ms`)), Math.max(0, timeoutMs - (Date.now() - started)));
      }),
    ]);
  } catch (err) {
    socket.destroy();
    throw new Error(`cannot connect to ${url}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  return conn;
}
