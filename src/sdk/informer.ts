/**
 * The informer client: a handler asks its gateway who is connected and what
 * the gateway is (PROTOCOL.md §7), over the informer UNIX socket the gateway
 * passes to every handler it starts (`BESTER_INFORMER_SOCKET`, or the second
 * argument after the handler's own socket).
 *
 * One kept connection; requests may be sent without waiting, and replies come
 * back in the order asked. Uses only `node:` built-ins, so it runs on Bun, Deno
 * and Node alike.
 *
 * @example A handler that answers "who is online?"
 * ```ts
 * import { runHandlerMain, sendClients } from "bester/sdk/handler";
 * import { connectInformer } from "bester/sdk/informer";
 *
 * const informer = await connectInformer();
 * await runHandlerMain(async ({ meta }) => sendClients([meta!.from], { online: await informer.listClients() }));
 * ```
 *
 * @module
 */
import { isRecord } from "../guard.ts";
import { connect, type Socket } from "node:net";
import process from "node:process";
import { encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import type { ErrorInfo } from "../protocol/reports.ts";

/**
 * How long {@link connectInformer} and each request wait by default.
 *
 * @example
 * ```ts
 * const informer = await connectInformer({ timeoutMs: 2 * DEFAULT_INFORMER_TIMEOUT_MS });
 * ```
 */
export const DEFAULT_INFORMER_TIMEOUT_MS = 5000;

/** Replies are small; this only guards against a corrupt length. */
const MAX_REPLY_BYTES = 16 * 1024 * 1024;

/**
 * Why an informer call failed.
 * - `no_socket`: no path given and `BESTER_INFORMER_SOCKET` is empty (the gateway runs without an informer)
 * - `unavailable`: nothing accepts connections on the path
 * - `timeout`: no connection or no reply in time; the connection is dropped
 * - `closed`: the connection ended before the reply
 * - `failed`: the gateway answered status "1"; `detail` carries its `{code, message}`
 * - `bad_reply`: the reply was not an informer reply
 *
 * @example
 * ```ts
 * try {
 *   await informer.isClient("bob");
 * } catch (err) {
 *   if (err instanceof InformerError && err.code === "closed") informer = await connectInformer();
 * }
 * ```
 */
export class InformerError extends Error {
  override name = "InformerError";
  constructor(
    readonly code: "no_socket" | "unavailable" | "timeout" | "closed" | "failed" | "bad_reply",
    message: string,
    /** The gateway's error, for `failed`. */
    readonly detail?: ErrorInfo,
  ) {
    super(message);
  }
}

/**
 * One listener of the gateway, as `serverInfo` reports it.
 *
 * @example
 * ```ts
 * const tcp = Object.values((await informer.serverInfo()).listeners).find((l: InformerListener) => l.type === "tcp4");
 * ```
 */
export interface InformerListener {
  /** `"tcp4"`, `"tcp6"` or `"unix"`. */
  type: string;
  /** The IP address, or the socket path for `"unix"`. */
  address: string;
  /** For TCP listeners. */
  port?: number;
}

/**
 * The gateway's answer to `serverInfo`.
 *
 * @example
 * ```ts
 * const { clientCount, adminInfo }: ServerInfo = await informer.serverInfo();
 * ```
 */
export interface ServerInfo {
  /** Authenticated client connections (a user on two devices counts twice). */
  clientCount: number;
  /** `admin.info` from the gateway's config, as written there. */
  adminInfo: unknown;
  /** `{"listener0": {...}, "listener1": {...}}`, the original daemon's shape. */
  listeners: Record<string, InformerListener>;
}

/**
 * A connection to the informer.
 *
 * @example
 * ```ts
 * const informer: InformerClient = await connectInformer();
 * if (await informer.isClient("bob")) console.log("bob is online");
 * informer.close();
 * ```
 */
export interface InformerClient {
  /** Usernames connected as clients now, sorted, each once. */
  listClients(): Promise<string[]>;
  /** Whether `username` is connected now. */
  isClient(username: string): Promise<boolean>;
  serverInfo(): Promise<ServerInfo>;
  /** Any command by name; resolves with its `data`, rejects on status "1". */
  request(type: string, data?: unknown): Promise<unknown>;
  /** Asks the gateway to end the connection, and waits until it has. */
  quit(): Promise<void>;
  /** Drops the connection at once; pending requests fail with `closed`. */
  close(): void;
  /** Resolves when the connection has ended, for whatever reason. */
  readonly closed: Promise<void>;
}

/**
 * Options of {@link connectInformer}.
 *
 * @example
 * ```ts
 * const options: ConnectInformerOptions = { socket: "/run/bester/informer.sock", timeoutMs: 1000 };
 * ```
 */
export interface ConnectInformerOptions {
  /** The informer socket. Default: {@link informerSocketPath}. */
  socket?: string;
  /** For connecting and for each request. Default {@link DEFAULT_INFORMER_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Where the gateway said its informer is: `BESTER_INFORMER_SOCKET`, else the
 * argument after the handler's socket (`PROGRAM SOCKET INFORMER`).
 *
 * @returns the path, or undefined when the gateway runs without an informer
 * @example
 * ```ts
 * const path = informerSocketPath();
 * if (path) console.error(`informer at ${path}`);
 * ```
 */
export function informerSocketPath(): string | undefined {
  const fromEnv = process.env["BESTER_INFORMER_SOCKET"];
  if (fromEnv) return fromEnv;
  const fromArgs = process.argv[3];
  return fromArgs ? fromArgs : undefined;
}

interface Pending {
  resolve(reply: Record<string, unknown>): void;
  reject(err: InformerError): void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Connects to the gateway's informer.
 *
 * Replies carry no id, so they are matched to requests by order; a request that
 * times out therefore drops the connection (every request behind it fails with
 * `timeout` too) rather than risk a late reply answering the wrong question.
 *
 * @param options the socket and the timeout, both optional
 * @returns a connected client
 * @throws {InformerError} `no_socket`, `unavailable` or `timeout`
 * @example
 * ```ts
 * const informer = await connectInformer();
 * const online = await informer.listClients(); // ["alice", "bob"]
 * ```
 */
export async function connectInformer(options: ConnectInformerOptions = {}): Promise<InformerClient> {
  const path = options.socket ?? informerSocketPath();
  const timeoutMs = options.timeoutMs ?? DEFAULT_INFORMER_TIMEOUT_MS;
  if (!path) {
    throw new InformerError("no_socket", "no informer socket: BESTER_INFORMER_SOCKET is empty (the gateway's informer is disabled?)");
  }
  const socket: Socket = connect(path);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new InformerError("timeout", `no connection to the informer at ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(new InformerError("unavailable", `cannot connect to the informer at ${path}: ${err.message}`));
    });
  });

  const pending: Pending[] = [];
  let ended: InformerError | undefined;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));

  const end = (err: InformerError) => {
    if (ended) return;
    ended = err;
    socket.destroy();
    for (const p of pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  };
  const decoder = new FrameDecoder(MAX_REPLY_BYTES, (value) => {
    const p = pending.shift();
    if (!p) return end(new InformerError("bad_reply", "the informer sent a reply nobody asked for"));
    clearTimeout(p.timer);
    if (!isRecord(value) || (value["status"] !== "0" && value["status"] !== "1")) {
      p.reject(new InformerError("bad_reply", `not an informer reply: ${JSON.stringify(value)?.slice(0, 80)}`));
      return;
    }
    p.resolve(value);
  });
  socket.on("data", (chunk: Uint8Array) => {
    const err = decoder.push(chunk);
    if (err) end(new InformerError("bad_reply", `unreadable reply: ${err.message}`));
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    end(new InformerError("closed", "the informer connection closed"));
    markClosed();
  });

  const ask = (type: string, data: unknown): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (ended) return reject(ended);
      const timer = setTimeout(
        () => end(new InformerError("timeout", `no informer reply to ${type} within ${timeoutMs} ms; connection dropped`)),
        timeoutMs,
      );
      pending.push({ resolve, reject, timer });
      socket.write(encodeFrame(data === undefined ? { command: { type } } : { command: { type, data } }));
    });

  const request = async (type: string, data?: unknown): Promise<unknown> => {
    const reply = await ask(type, data);
    if (reply["status"] === "0") return reply["data"];
    const e = isRecord(reply["error"]) ? reply["error"] : undefined;
    const detail = e && typeof e["code"] === "string" && typeof e["message"] === "string" ? { code: e["code"], message: e["message"] } : undefined;
    throw new InformerError("failed", `informer ${type} failed: ${detail ? `${detail.code}: ${detail.message}` : 'status "1"'}`, detail);
  };

  return {
    async listClients() {
      const data = await request("listClients");
      if (!Array.isArray(data)) throw new InformerError("bad_reply", "listClients: expected a list of usernames");
      return data as string[];
    },
    async isClient(username) {
      return (await request("isClient", username)) === true;
    },
    async serverInfo() {
      return (await request("serverInfo")) as ServerInfo;
    },
    request,
    async quit() {
      await request("quit");
      await closed;
    },
    close() {
      end(new InformerError("closed", "closed by the client"));
    },
    closed,
  };
}
