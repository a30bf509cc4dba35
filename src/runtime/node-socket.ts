/**
 * A `node:net` socket as a byte transport ({@link Conn}). Deno serves
 * `node:net` from native, libuv-style stream handles: reads are pushed as
 * they arrive and a write goes to the kernel at once when it can, where a
 * `Deno.Conn` costs a promise per read and per write.
 * @module
 */
import { connect as netConnect, createServer, type Socket } from "node:net";
import type { Conn, Endpoint, SocketEvents } from "./types.ts";

let nextId = 1;

const OWNER = Symbol("conn");
type OwnedSocket = Socket & { [OWNER]: NodeSocketConn };

/**
 * Where writes are copied before the socket gets them, one after another: a
 * write the kernel takes whole leaves its place free for the next; one it
 * does not keeps a view of it until written. A full arena is left to the
 * views still on it (and the collector) and a new one begun: an allocation
 * per write is dear on V8. A write above a quarter of one gets its own copy.
 */
const ARENA_BYTES = 256 * 1024;
let arena = new Uint8Array(ARENA_BYTES);
let arenaUsed = 0;

/**
 * Takes everything offered while the socket's own queue is below its
 * high-water mark (copied, so the caller may reuse its buffer), nothing
 * above it; `drain` follows the socket's. Events that come before `start`
 * (a dial's socket is made before anyone owns it) wait for it.
 */
export class NodeSocketConn implements Conn {
  readonly id = nextId++;
  started = false;
  closed = false;
  ending = false;
  /** The socket's `error` comes before its `close`, which reports it. */
  error: Error | undefined;
  /** Before `start`: the chunks read, and whether the peer ended or the socket closed. */
  early: { chunks: Uint8Array[]; ended: boolean; closed: boolean } | undefined;

  constructor(
    readonly socket: Socket,
    readonly remote: Endpoint,
    readonly events: SocketEvents,
    /** Accepted by a listener whose owner takes half-closes (SocketEvents.end). */
    readonly halfOpen = false,
    public context: unknown = undefined,
  ) {
    (socket as OwnedSocket)[OWNER] = this;
    socket.on("data", onData).on("drain", onDrain).on("end", onEnd).on("error", onError).on("close", onClose);
  }

  /** Fires `open`, then whatever came before it. */
  start(): void {
    this.started = true;
    this.events.open?.(this);
    const early = this.early;
    if (early === undefined) return;
    this.early = undefined;
    for (const chunk of early.chunks) this.received(chunk);
    if (early.ended) this.peerEnded();
    if (early.closed) this.finish(this.error);
  }

  received(chunk: Uint8Array): void {
    if (this.closed) return;
    if (this.started) this.events.data(this, chunk);
    else this.#early().chunks.push(chunk.slice());
  }

  peerEnded(): void {
    if (this.closed) return;
    if (!this.started) this.#early().ended = true;
    // Half-open: the owner decides when to close (SocketEvents.end).
    else if (this.halfOpen) this.events.end?.(this);
    else this.destroy();
  }

  socketClosed(): void {
    if (this.started) this.finish(this.error);
    else this.#early().closed = true;
  }

  #early() {
    return (this.early ??= { chunks: [], ended: false, closed: false });
  }

  write(bytes: Uint8Array, start: number, end: number): number {
    const socket = this.socket;
    if (this.closed || this.ending || start >= end || socket.writableNeedDrain) return 0;
    const length = end - start;
    if (length > ARENA_BYTES / 4) {
      // Not `slice`: on a node:buffer Buffer, which the caller's may be, it is a view.
      socket.write(new Uint8Array(bytes.subarray(start, end)));
      return length;
    }
    if (arenaUsed + length > ARENA_BYTES) {
      arena = new Uint8Array(ARENA_BYTES);
      arenaUsed = 0;
    }
    const copy = arena.subarray(arenaUsed, arenaUsed + length);
    copy.set(bytes.subarray(start, end));
    socket.write(copy);
    // Not written whole at once: the socket keeps the view.
    if (socket.writableLength > 0) arenaUsed += length;
    return length;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    const socket = this.socket;
    // With everything with the kernel, a plain close delivers it just the same.
    if (socket.writableLength === 0) this.destroy();
    else socket.once("finish", onFinished).end();
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.socket.destroy();
    this.finish(err);
  }

  finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.events.close(this, err);
  }
}

// One set of listeners for every socket, no closures: idle connections are many.
function onData(this: OwnedSocket, chunk: Uint8Array): void {
  // A plain Uint8Array: the decoder decodes one with TextDecoder, cheaper on Deno than a Buffer's utf8Slice.
  this[OWNER].received(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
}

function onDrain(this: OwnedSocket): void {
  const conn = this[OWNER];
  if (!conn.closed && !conn.ending) conn.events.drain?.(conn);
}

function onEnd(this: OwnedSocket): void {
  this[OWNER].peerEnded();
}

function onError(this: OwnedSocket, err: Error): void {
  this[OWNER].error ??= err;
}

function onClose(this: OwnedSocket): void {
  this[OWNER].socketClosed();
}

function onFinished(this: OwnedSocket): void {
  this[OWNER].destroy();
}

function remoteOf(socket: Socket, at: Endpoint): Endpoint {
  if (at.kind === "unix") return at;
  const host = socket.remoteAddress ?? "";
  return { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: socket.remotePort ?? 0 };
}

/**
 * Listens with node:net; resolves to the bound port (0 for UNIX) and the
 * close. Errors keep node:net's `code`. A UNIX listener binds at `bindPath`
 * when given (a staging path, see bindWithMode), and names itself `at`.
 */
export function listenNodeSocket(at: Endpoint, events: SocketEvents, bindPath?: string): Promise<{ port: number; close(): void }> {
  const halfOpen = events.end !== undefined;
  const server = createServer({ allowHalfOpen: halfOpen, noDelay: true }, (socket) => {
    new NodeSocketConn(socket, remoteOf(socket, at), events, halfOpen).start();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const ready = () => {
      server.off("error", reject);
      // After binding, an error is a failed accept (EMFILE, …): that client is lost, the listener carries on.
      server.on("error", () => {});
      const address = server.address();
      resolve({ port: typeof address === "object" && address !== null ? address.port : 0, close: () => server.close() });
    };
    if (at.kind === "unix") server.listen(bindPath ?? at.path, ready);
    else server.listen({ host: at.host, port: at.port, exclusive: true }, ready);
  });
}

/**
 * Where a dialled socket reads (node:net's `onread`): one buffer for all of
 * them, as each read is handed on before the next. It spares the stream
 * machinery and a fresh buffer per read.
 */
const dialReadBuffer = new Uint8Array(64 * 1024);

function onDialRead(this: OwnedSocket, n: number, buf: Uint8Array): boolean {
  this[OWNER].received(buf.subarray(0, n));
  return true;
}

/** Dials with node:net; resolves once connected, not started (its owner fires `open` with `start`). */
export function dialNodeSocket(to: Endpoint, events: SocketEvents, context: unknown): Promise<NodeSocketConn> {
  const onread = { buffer: dialReadBuffer, callback: onDialRead };
  const socket =
    to.kind === "unix" ? netConnect({ path: to.path, onread }) : netConnect({ host: to.host, port: to.port, noDelay: true, onread });
  const conn = new NodeSocketConn(socket, to, events, false, context);
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(conn);
    });
  });
}
