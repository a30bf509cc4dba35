/**
 * A WebSocket listener the adapter speaks itself, over its own TCP listener
 * (with TLS when asked): each accepted connection's HTTP request is read
 * here. An upgrade on the listener's path becomes a {@link SocketWebSocket};
 * any other request gets one answer from answerRequest (the pages, 426, 403)
 * and the connection is closed after it.
 *
 * Deno uses it: its own WebSocket server fires an event and an operation per
 * message, cannot stop reading a peer, closes every upgraded socket when its
 * server shuts down, and reads messages up to a fixed 64 MiB; this one costs
 * a message little more than a socket does, holds a sender back as TCP does,
 * keeps its connections when the listener closes, and refuses a message
 * above the limit before reading it.
 * @module
 */
import type { Conn, Endpoint, Listener, SocketEvents, TlsServerOptions, WebSocketListenOptions } from "./types.ts";
import { acceptKey, answerRequest, MAX_HANDSHAKE_BYTES } from "./websocket-http.ts";
import { concat, SocketWebSocket } from "./websocket-socket.ts";

/** The runtime's own TCP listen, which this rides on. */
type Listen = (at: Endpoint, events: SocketEvents, options?: { tls?: TlsServerOptions }) => Promise<Listener>;

/** A connection that has not finished its request by then is closed: an idle one would hold a socket for nothing. */
const REQUEST_TIMEOUT_MS = 10_000;

/** RFC 6455 §4.1: a base64 of 16 bytes. */
const KEY_SHAPE = /^[A-Za-z0-9+/]{22}==$/;

const REASONS: Record<number, string> = { 200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 426: "Upgrade Required", 431: "Request Header Fields Too Large", 500: "Internal Server Error" };

class ServerWebSocket extends SocketWebSocket {
  /** The upgrade is taken: `reply` (the 101) goes out first, then frames flow, `rest` (read with the request) first. */
  accepted(socket: Conn, reply: Uint8Array, rest: Uint8Array): void {
    this.socket = socket;
    socket.context = this;
    this.send(reply, reply.byteLength);
    this.opened(rest);
  }
}

/** An accepted connection until its request is read and answered. */
class HttpExchange {
  #head: Uint8Array | undefined;
  #out: Uint8Array | undefined;
  #ending = false;
  readonly #timer: ReturnType<typeof setTimeout>;

  constructor(
    readonly socket: Conn,
    readonly listener: SocketListenerState,
  ) {
    this.#timer = setTimeout(() => socket.destroy(), REQUEST_TIMEOUT_MS);
  }

  data(chunk: Uint8Array): void {
    if (this.#ending) return;
    const bytes = this.#head === undefined ? chunk : concat(this.#head, chunk);
    const end = headEnd(bytes);
    if (end < 0) {
      if (bytes.byteLength >= MAX_HANDSHAKE_BYTES) return this.#answer(new Response("request head too large\n", { status: 431 }), false);
      this.#head = bytes.slice();
      return;
    }
    this.#head = undefined;
    clearTimeout(this.#timer);
    const parsed = parseHead(new TextDecoder("latin1").decode(bytes.subarray(0, end)), this.listener);
    if (typeof parsed === "string") return this.#answer(new Response(`${parsed}\n`, { status: 400 }), false);
    const { request } = parsed;
    const rest = bytes.subarray(end + 4);
    const answer = answerRequest(request, this.listener.options, () => this.socket.remote, (remote) => this.#upgrade(request, remote, rest));
    if (answer === undefined) return;
    const head = request.method === "HEAD";
    if (answer instanceof Response) return this.#answer(answer, head);
    answer.then(
      (r) => this.#answer(r, head),
      (err) => this.#answer(new Response(`${(err as Error).message}\n`, { status: 500 }), head),
    );
  }

  /** Takes the upgrade; a throw is answered 400 by answerRequest. */
  #upgrade(request: Request, remote: Endpoint, rest: Uint8Array): undefined {
    if (request.method !== "GET") throw new Error("an upgrade is a GET request");
    if (!/(^|,)\s*upgrade\s*(,|$)/i.test(request.headers.get("connection") ?? "")) throw new Error("Connection must include Upgrade");
    if (request.headers.get("sec-websocket-version") !== "13") throw new Error("Sec-WebSocket-Version must be 13");
    const key = request.headers.get("sec-websocket-key") ?? "";
    if (!KEY_SHAPE.test(key)) throw new Error("Sec-WebSocket-Key is missing or not 16 bytes in base64");
    const reply = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`;
    const { events, options } = this.listener;
    const ws = new ServerWebSocket("server", remote, events, undefined, options.maxMessageBytes);
    // Through the WebSocket, so a reply the socket takes in part keeps its order with the frames after it.
    ws.accepted(this.socket, new TextEncoder().encode(reply), rest.slice());
    return undefined;
  }

  /** One HTTP answer, then the connection ends. */
  #answer(response: Response, head: boolean): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#timer);
    this.#write(response, head).then(undefined, (err: Error) => this.socket.destroy(err));
  }

  async #write(response: Response, head: boolean): Promise<void> {
    const body = head ? new Uint8Array(0) : new Uint8Array(await response.arrayBuffer());
    let text = `HTTP/1.1 ${response.status} ${response.statusText || REASONS[response.status] || ""}\r\n`;
    response.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "connection" && name !== "transfer-encoding") text += `${name}: ${value}\r\n`;
    });
    text += `Content-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n`;
    this.#out = concat(new TextEncoder().encode(text), body);
    this.drain();
  }

  drain(): void {
    const out = this.#out;
    if (out === undefined) return;
    const taken = this.socket.write(out, 0, out.byteLength);
    if (taken < out.byteLength) {
      this.#out = out.subarray(taken);
      return;
    }
    this.#out = undefined;
    this.socket.end();
  }

  closed(): void {
    clearTimeout(this.#timer);
  }
}

interface SocketListenerState {
  events: SocketEvents;
  options: WebSocketListenOptions;
  scheme: "http" | "https";
  /** host:port for requests that name no Host. */
  authority: string;
}

/** Where the head ends (the blank line), or -1 while it has not. */
function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.byteLength; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i - 3;
  }
  return -1;
}

/** The request line and headers as a fetch Request (no body: nothing served here takes one), or why they are not HTTP/1.1. */
function parseHead(text: string, listener: SocketListenerState): { request: Request } | string {
  const lines = text.split("\r\n");
  const line = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(lines[0] ?? "");
  if (line === null) return "not an HTTP/1.1 request line";
  const headers = new Headers();
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(":");
    if (colon <= 0) return `not a header: ${JSON.stringify(l.slice(0, 40))}`;
    try {
      headers.append(l.slice(0, colon).trim(), l.slice(colon + 1).trim());
    } catch {
      return `not a valid header: ${JSON.stringify(l.slice(0, 40))}`;
    }
  }
  const target = line[2]!;
  if (!target.startsWith("/")) return "the request target must be a path";
  try {
    const url = `${listener.scheme}://${headers.get("host") ?? listener.authority}${target}`;
    return { request: new Request(url, { method: line[1]!, headers }) };
  } catch (err) {
    return `not a valid request: ${(err as Error).message}`;
  }
}

/** Listens for WebSocket upgrades and the listener's pages on `at` over `listen`. */
export async function listenSocketWebSocket(listen: Listen, at: Endpoint, events: SocketEvents, options: WebSocketListenOptions): Promise<Listener> {
  if (at.kind === "unix") throw new Error("a WebSocket listener needs a TCP address");
  const state: SocketListenerState = {
    events,
    options,
    scheme: options.tls === undefined ? "http" : "https",
    authority: `${at.kind === "tcp6" ? `[${at.host}]` : at.host}:${at.port}`,
  };
  const carrier: SocketEvents = {
    open(socket) {
      socket.context = new HttpExchange(socket, state);
    },
    data(socket, chunk) {
      const c = socket.context;
      if (c instanceof SocketWebSocket) c.received(chunk);
      else (c as HttpExchange).data(chunk);
    },
    drain(socket) {
      const c = socket.context;
      if (c instanceof SocketWebSocket) c.socketDrain();
      else (c as HttpExchange).drain();
    },
    close(socket, err) {
      const c = socket.context;
      if (c instanceof SocketWebSocket) c.socketClosed(err);
      else (c as HttpExchange | undefined)?.closed();
    },
  };
  const listener = await listen(at, carrier, options.tls === undefined ? {} : { tls: options.tls });
  if (listener.address.kind !== "unix") state.authority = `${at.kind === "tcp6" ? `[${at.host}]` : at.host}:${listener.address.port}`;
  return listener;
}
