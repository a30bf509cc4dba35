/**
 * A raw Bester client for tests: real sockets (node:net), its own minimal
 * frame decoder so the tests do not trust the code they test, and helpers to
 * wait for a frame or for the close.
 */
import { connect, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

/**
 * With `ca` (PEM text), a TCP target is dialled with TLS and its certificate
 * checked against it; with `localAddress`, from that address (127.0.0.2 is
 * another loopback source).
 */
export type Target = { host: string; port: number; ca?: string; localAddress?: string } | { path: string };

export interface Wire {
  readonly socket: Socket;
  send(message: unknown): void;
  sendRaw(bytes: Uint8Array): void;
  /** The next frame not yet taken, waiting up to `ms`. */
  next(ms?: number): Promise<any>;
  /** Frames received and not yet taken. */
  readonly inbox: any[];
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  close(): void;
}

export function frame(message: unknown): Uint8Array {
  return frameText(JSON.stringify(message));
}

export function frameText(text: string): Uint8Array {
  return frameBytes(new TextEncoder().encode(text));
}

export function frameBytes(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

export async function openWire(target: Target, timeoutMs = 5000): Promise<Wire> {
  const tls = "path" in target || target.ca === undefined ? undefined : target.ca;
  const socket =
    "path" in target
      ? connect(target.path)
      : tls !== undefined
        ? connectTls({ host: target.host, port: target.port, ca: tls })
        : connect({ port: target.port, host: target.host, ...(target.localAddress ? { localAddress: target.localAddress } : {}) });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("connect timed out")), timeoutMs);
    socket.once(tls !== undefined ? "secureConnect" : "connect", () => (clearTimeout(timer), resolve()));
    socket.once("error", (e) => (clearTimeout(timer), reject(e)));
  });
  let buffered = Buffer.alloc(0);
  const inbox: any[] = [];
  const waiters: Array<() => void> = [];
  let closed = false;
  const wake = () => waiters.splice(0).forEach((w) => w());
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4) {
      const len = buffered.readUInt32LE(0);
      if (buffered.length < 4 + len) break;
      inbox.push(JSON.parse(buffered.subarray(4, 4 + len).toString("utf8")));
      buffered = buffered.subarray(4 + len);
    }
    wake();
  });
  socket.on("error", () => {});
  const closedPromise = new Promise<void>((resolve) =>
    socket.once("close", () => {
      closed = true;
      wake();
      resolve();
    }),
  );
  return {
    socket,
    inbox,
    closed: closedPromise,
    isClosed: () => closed,
    send: (m) => socket.write(frame(m)),
    sendRaw: (b) => socket.write(b),
    async next(ms = 5000) {
      const deadline = Date.now() + ms;
      while (inbox.length === 0) {
        if (closed) throw new Error("connection closed while waiting for a frame");
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no frame within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(t), resolve()));
        });
      }
      return inbox.shift();
    },
    close: () => socket.destroy(),
  };
}

/** Waits for the server to close the connection, or fails after `ms`. */
export async function expectClosed(wire: Wire, ms = 5000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    wire.closed,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

export function authFrame(username: string, password = "pw", payload?: object) {
  return {
    header: { scope: "client", authentication: { username, password } },
    ...(payload ? { payload } : { payload: { type: "dummy", id: "first", data: null } }),
  };
}

/** Opens a connection and authenticates as `username`; returns once "auth_special" is good. */
export async function login(target: Target, username: string): Promise<Wire> {
  const wire = await openWire(target);
  wire.send(authFrame(username));
  const reply = await wire.next();
  if (reply?.payload?.id !== "auth_special" || reply?.header?.status !== "good") {
    throw new Error(`login failed: ${JSON.stringify(reply)}`);
  }
  return wire;
}
