/**
 * A raw WebSocket client for tests (RFC 6455 over node:net, or node:tls for
 * wss): its own handshake and frame codec, so the tests trust nothing of the
 * code they test, and control what a browser's WebSocket would not let them:
 * a binary message, a message in fragments, a client that stops reading,
 * and the exact close code the server sent.
 */
import { createHash, randomBytes } from "node:crypto";
import { connect, isIP, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

export interface WsOptions {
  /** Sent as the Origin header (a browser always sends one; other clients need not). */
  origin?: string;
  /** The CA (PEM) a wss:// server's certificate must be signed by. */
  ca?: string;
  /** Sent as the Host header instead of the URL's (what a page under another name, pointed at this address, sends). */
  host?: string;
  timeoutMs?: number;
  /** false: pings are counted (`pings`) and left unanswered, as by a peer that is gone. */
  answerPings?: boolean;
}

export interface WsClose {
  /** The close code the server sent; undefined when the connection ended without a close frame. */
  code: number | undefined;
  reason: string;
}

export interface WsWire {
  readonly socket: Socket;
  sendText(text: string): void;
  sendBinary(bytes: Uint8Array): void;
  /** One message as fragments: a text frame without FIN, then continuation frames. */
  sendFragmented(parts: string[]): void;
  /** Sends a Bester message as JSON text. */
  send(message: unknown): void;
  /** The next text message not yet taken, parsed as JSON, waiting up to `ms`. */
  next(ms?: number): Promise<any>;
  /** Text messages received and not yet taken. */
  readonly inbox: string[];
  /** Resolves when the connection has ended, with the server's close code. */
  readonly closed: Promise<WsClose>;
  isClosed(): boolean;
  /** Starts a close handshake with `code`. */
  close(code?: number): void;
  /** Stops reading the socket (the server then meets back-pressure). */
  pause(): void;
  resume(): void;
  /** Pings the server sent so far. */
  pings(): number;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The HTTP answer to an upgrade the server did not take. */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`upgrade refused with HTTP ${status}: ${body.trim()}`);
  }
}

function encodeFrame(opcode: number, payload: Uint8Array, fin = true): Buffer {
  const mask = randomBytes(4);
  const n = payload.byteLength;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = Buffer.alloc(head + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  mask.copy(out, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  return out;
}

/** Opens a WebSocket to `url` (ws:// or wss://); rejects with {@link UpgradeRefused} when the server answers otherwise. */
export async function openWs(url: string, options: WsOptions = {}): Promise<WsWire> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(u.port || (u.protocol === "wss:" ? 443 : 80));
  const socket =
    u.protocol === "wss:" ? connectTls({ host, port, ca: options.ca, servername: isIP(host) ? undefined : host }) : connect(port, host);
  const key = randomBytes(16).toString("base64");
  const timeoutMs = options.timeoutMs ?? 5000;

  // The handshake: the request, then the answer's head.
  let rest = await new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no upgrade answer from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    let got = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = got.subarray(0, end).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      if (status !== 101) {
        // The rest of the answer is its body: read until the server closes or the length is in.
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
        const body = got.subarray(end + 4);
        if (Number.isFinite(length) && body.length < length) return;
        clearTimeout(timer);
        socket.off("data", onData);
        socket.destroy();
        return reject(new UpgradeRefused(status, body.toString("utf8")));
      }
      clearTimeout(timer);
      socket.off("data", onData);
      const accept = /\r\nsec-websocket-accept: *(\S+)/i.exec(head)?.[1];
      const expected = createHash("sha1").update(key + GUID).digest("base64");
      if (accept !== expected) {
        socket.destroy();
        return reject(new Error(`bad Sec-WebSocket-Accept: ${accept}`));
      }
      resolve(got.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const path = u.pathname + u.search;
    const lines = [
      `GET ${path} HTTP/1.1`,
      `Host: ${options.host ?? u.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(options.origin === undefined ? [] : [`Origin: ${options.origin}`]),
    ];
    const send = () => socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (u.protocol === "wss:") socket.once("secureConnect", send);
    else socket.once("connect", send);
  });

  const inbox: string[] = [];
  const waiters: Array<() => void> = [];
  const wake = () => waiters.splice(0).forEach((w) => w());
  let ended = false;
  let closeInfo: WsClose = { code: undefined, reason: "" };
  let resolveClosed!: (c: WsClose) => void;
  const closed = new Promise<WsClose>((r) => (resolveClosed = r));
  let fragments: Buffer[] | undefined;
  let sentClose = false;
  let pings = 0;

  const write = (bytes: Buffer) => {
    if (!socket.destroyed) socket.write(bytes);
  };
  const parse = () => {
    for (;;) {
      if (rest.length < 2) return;
      const fin = (rest[0]! & 0x80) !== 0;
      const opcode = rest[0]! & 0x0f;
      let n = rest[1]! & 0x7f;
      let at = 2;
      if (n === 126) {
        if (rest.length < 4) return;
        n = rest.readUInt16BE(2);
        at = 4;
      } else if (n === 127) {
        if (rest.length < 10) return;
        n = Number(rest.readBigUInt64BE(2));
        at = 10;
      }
      if (rest.length < at + n) return;
      const payload = rest.subarray(at, at + n);
      rest = rest.subarray(at + n);
      if (opcode === 0x8) {
        closeInfo = { code: n >= 2 ? payload.readUInt16BE(0) : undefined, reason: payload.subarray(2).toString("utf8") };
        if (!sentClose) {
          sentClose = true;
          write(encodeFrame(0x8, payload.subarray(0, Math.min(2, n))));
        }
        socket.end();
        continue;
      }
      if (opcode === 0x9) {
        pings++;
        if (options.answerPings !== false) write(encodeFrame(0xa, payload));
        continue;
      }
      if (opcode === 0xa) continue;
      if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        (fragments ??= []).push(Buffer.from(payload));
        if (!fin) continue;
        const whole = Buffer.concat(fragments);
        fragments = undefined;
        inbox.push(whole.toString("utf8"));
        wake();
      }
    }
  };
  socket.on("data", (chunk: Buffer) => {
    rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    parse();
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    ended = true;
    resolveClosed(closeInfo);
    wake();
  });
  parse();

  return {
    socket,
    inbox,
    closed,
    isClosed: () => ended,
    pings: () => pings,
    sendText: (text) => write(encodeFrame(0x1, Buffer.from(text, "utf8"))),
    sendBinary: (bytes) => write(encodeFrame(0x2, bytes)),
    sendFragmented(parts) {
      parts.forEach((p, i) => write(encodeFrame(i === 0 ? 0x1 : 0x0, Buffer.from(p, "utf8"), i === parts.length - 1)));
    },
    send(message) {
      write(encodeFrame(0x1, Buffer.from(JSON.stringify(message), "utf8")));
    },
    async next(ms = 5000) {
      const deadline = Date.now() + ms;
      while (inbox.length === 0) {
        if (ended) throw new Error(`connection closed (code ${closeInfo.code}) while waiting for a message`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no message within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => (clearTimeout(t), resolve()));
        });
      }
      return JSON.parse(inbox.shift()!);
    },
    close(code = 1000) {
      if (sentClose) return;
      sentClose = true;
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code, 0);
      write(encodeFrame(0x8, payload));
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  };
}

/** Opens a WebSocket and logs in as `username`; returns once "auth_special" is good. */
export async function loginWs(url: string, username: string, options: WsOptions = {}): Promise<WsWire> {
  const ws = await openWs(url, options);
  ws.send({ header: { scope: "client", authentication: { username, password: "pw" } }, payload: { type: "dummy", id: "first", data: null } });
  const reply = await ws.next();
  if (reply?.payload?.id !== "auth_special" || reply?.header?.status !== "good") throw new Error(`login failed: ${JSON.stringify(reply)}`);
  return ws;
}
