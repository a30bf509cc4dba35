/**
 * The SDK's handler transport on `node:net`, which Bun, Deno and Node all
 * have: each connection decodes its requests and joins the answers of one
 * read into one write.
 * @module
 */
import { createServer, type Server, type Socket } from "node:net";
import { FrameDecoder } from "../protocol/frame.ts";
import { OutBuffer } from "../protocol/out-buffer.ts";
import { bindWithMode } from "../runtime/unix-path.ts";
import { HandlerStartError } from "./errors.ts";
import { HANDLER_SOCKET_MODE, Served, type Service, type Wire } from "./served.ts";

class NodeWire implements Wire {
  // Answers ready to leave, joined into one write: under pipelined load one
  // system call carries every answer of a read, not one each.
  readonly #out = new OutBuffer();
  /** Inside a read: its end flushes. */
  reading = false;
  #flushQueued = false;
  readonly #flushNow = () => this.flush();

  constructor(readonly socket: Socket) {}

  send(json: string): void {
    this.#out.pushFrame(json);
  }

  answered(idle: boolean): void {
    // An answer finished outside a read waits for the turn's end only while more are due.
    if (this.reading) return;
    if (idle) this.flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushNow);
    }
  }

  flush(): void {
    this.#flushQueued = false;
    if (this.#out.empty) return;
    // node:net may keep the chunk until the kernel takes it: hand it over.
    const chunk = this.#out.takeAll();
    if (this.socket.writable) this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  finish(): void {
    this.flush();
    // With every answer already handed to the kernel, a plain close delivers
    // them just the same and saves the shutdown() a graceful end adds, once
    // per message in per-message mode.
    if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function requested(value: unknown, _index: number, owner: unknown): void {
  (owner as Served).request(value);
}

/** Listens with node:net; resolves to its close. */
export async function listenNode(socketPath: string, service: Service): Promise<() => Promise<void>> {
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    const wire = new NodeWire(socket);
    const served = new Served(wire, service);
    const decoder = new FrameDecoder(service.maxFrameBytes, requested, { owner: served });
    socket.on("data", (chunk: Uint8Array) => {
      wire.reading = true;
      // As a plain Uint8Array the decoder decodes with TextDecoder: Deno's Buffer#utf8Slice is slow past a few hundred bytes.
      const err = decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      wire.reading = false;
      if (err !== undefined) served.unreadable(err.message);
      else wire.flush();
    });
    // allowHalfOpen: a gateway that shuts its side after the request still gets the answer.
    socket.on("end", () => served.end());
    socket.on("error", (err) => service.log(`gateway connection error: ${err.message}`));
    socket.on("close", () => served.closed());
  });
  const listen = (at: string) =>
    new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const code = err.code === "EADDRINUSE" ? "in_use" : "listen_failed";
        reject(new HandlerStartError(code, `cannot listen on ${socketPath}: ${err.message}`, { cause: err }));
      };
      server.once("error", onError);
      server.listen(at, () => {
        server.off("error", onError);
        resolve();
      });
    });
  await bindWithMode(socketPath, HANDLER_SOCKET_MODE, listen, () => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on("error", (err) => service.log(`listener error: ${err.message}`));
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
