/**
 * TLS listeners on Deno, served by `node:tls` instead of `Deno.listenTls`.
 *
 * Why: a `Deno.listenTls` connection closed before its handshake keeps its
 * socket until the handshake ends (Deno 2.9), so a client that connects and
 * never sends a ClientHello could never be cut. A `node:tls` socket closes at
 * once. Each accepted socket is given the shape of a `Deno.Conn`
 * ({@link DenoConn}), so the adapter's one connection class serves it.
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { createSecureContext, TLSSocket } from "node:tls";
import type { DenoAddr, DenoConn } from "./deno-api.ts";
import type { TlsServerOptions } from "./types.ts";

/** A TLS socket as a pull-based `Deno.Conn`: reads wait for data, the socket stays paused between reads. */
class NodeTlsConn implements DenoConn {
  readonly remoteAddr: DenoAddr;
  #chunks: Uint8Array[] = [];
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(private readonly socket: TLSSocket, raw: Socket) {
    this.remoteAddr = { transport: "tcp", hostname: raw.remoteAddress ?? "", port: raw.remotePort ?? 0 };
    socket.pause();
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error ??= err;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async read(buf: Uint8Array): Promise<number | null> {
    for (;;) {
      const chunk = this.#chunks[0];
      if (chunk !== undefined) {
        const n = Math.min(chunk.byteLength, buf.byteLength);
        buf.set(chunk.subarray(0, n));
        if (n === chunk.byteLength) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(n);
        return n;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.socket.resume();
      });
    }
  }

  write(buf: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.socket.write(buf, (err) => (err ? reject(err) : resolve(buf.byteLength)));
    });
  }

  closeWrite(): Promise<void> {
    this.socket.end();
    return Promise.resolve();
  }

  close(): void {
    this.socket.destroy();
  }

  setNoDelay(noDelay = true): void {
    this.socket.setNoDelay(noDelay);
  }
}

/**
 * Listens on TCP and speaks TLS to every accepted socket; `accept` gets each
 * at once, before its handshake, so the owner's timers cover a client that
 * never sends one. A failed handshake ends that connection with an error.
 */
export function listenNodeTls(
  at: { host: string; port: number },
  tls: TlsServerOptions,
  accept: (conn: DenoConn) => void,
): Promise<{ port: number; close(): void }> {
  const secureContext = createSecureContext({ cert: tls.cert, key: tls.key });
  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (raw) => {
    const socket = new TLSSocket(raw, { isServer: true, secureContext });
    accept(new NodeTlsConn(socket, raw));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: at.host, port: at.port, exclusive: true }, () => {
      server.off("error", reject);
      // After binding, an error is a failed accept (EMFILE, …): that client is lost, the listener carries on.
      server.on("error", () => {});
      resolve({ port: (server.address() as { port: number }).port, close: () => server.close() });
    });
  });
}
