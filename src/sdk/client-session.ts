/**
 * One logged-in client connection, whatever carries its frames: the login,
 * sends and their reports, delivered messages and their acknowledgement,
 * and how it ended. A transport (a socket, a WebSocket) hands it each
 * frame's value and sends the JSON text it gives; this imports nothing of
 * the platform, so the browser build runs it as Node, Bun and Deno do.
 * @module
 */
import { isRecord } from "../guard.ts";
import { frameJson } from "../protocol/frame-json.ts";
import type { ErrorInfo } from "../protocol/reports.ts";
import {
  type BesterClient,
  BesterClientError,
  type ClientClosed,
  type ConnectClientOptions,
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReceivedMessage,
  type StatusReport,
} from "./client-api.ts";

/** One open connection as the client sees it. */
export interface ClientWire {
  /** Sends one frame's JSON text. */
  send(json: string): void;
  /** Ends the connection once what was sent has gone. */
  end(): void;
  /** Drops the connection now. */
  destroy(): void;
}

/** What a transport tells the client. */
export interface WireEvents {
  /** One frame from the server, parsed. */
  frame(value: unknown): void;
  /** The transport failed (a socket error, a frame that cannot be read); `closed` follows. */
  failed(err: Error): void;
  /** The connection is gone; `code` is a WebSocket's close code. Called once. */
  closed(code?: number): void;
}

/**
 * Opens a transport to `where`, reporting to `events`; resolves once it is
 * connected (rejects with a {@link BesterClientError} `connect_failed`).
 */
export type OpenWire = (events: WireEvents) => Promise<ClientWire>;

const DEFAULT_CLIENT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** The id the server gives the login's status report (PROTOCOL.md §2). */
const AUTH_ID = "auth_special";

/** Batching of acknowledgements when {@link ConnectClientOptions.ack} does not say. */
const ACK_EVERY = 32;
const ACK_AFTER_MS = 1000;

/** A server that never closes its side must not keep close() waiting longer than this. */
const CLOSE_WAIT_MS = 1000;

function errorInfoOf(header: Record<string, unknown>): ErrorInfo | undefined {
  const error = header["error"];
  if (!isRecord(error)) return undefined;
  return { code: String(error["code"] ?? "unknown"), message: String(error["message"] ?? "") };
}

interface Pending {
  resolve(report: StatusReport): void;
  reject(err: Error): void;
}

class Client implements BesterClient {
  readonly username: string;
  readonly closed: Promise<ClientClosed>;
  delivery = { ack: false, reset: false };
  lastSeq: number;
  /** The highest seq acknowledged (or being acknowledged). */
  #ackedSeq: number;
  readonly #ackEvery: number;
  readonly #ackAfterMs: number;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #ackSeq = 0;
  #wire: ClientWire | undefined;
  readonly #pending = new Map<string, Pending>();
  readonly #inbox: ReceivedMessage[] = [];
  #wake: Array<() => void> = [];
  #seq = 0;
  #fatal: ErrorInfo | undefined;
  #closeInfo: ClientClosed | undefined;
  #closing = false;
  #error: Error | undefined;
  #resolveClosed!: (info: ClientClosed) => void;
  /** Until login completes, frames go here instead of being dispatched. */
  #onLoginFrame: ((frame: Record<string, unknown>) => void) | undefined;

  constructor(username: string, ack: ConnectClientOptions["ack"], lastSeq: number) {
    this.username = username;
    this.#ackEvery = typeof ack === "object" ? (ack.every ?? ACK_EVERY) : ACK_EVERY;
    this.#ackAfterMs = typeof ack === "object" ? (ack.afterMs ?? ACK_AFTER_MS) : ACK_AFTER_MS;
    this.lastSeq = lastSeq;
    // Not known to be acknowledged: the server may be keeping what an earlier connection had.
    this.#ackedSeq = 0;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  attach(wire: ClientWire): void {
    this.#wire = wire;
  }

  /** Sends the login frame and waits for `auth_special`. */
  login(password: string, ack: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#onLoginFrame = (frame) => {
        const header = isRecord(frame["header"]) ? frame["header"] : {};
        const payload = isRecord(frame["payload"]) ? frame["payload"] : {};
        this.#onLoginFrame = undefined;
        if (header["messageType"] === "statusReport" && payload["id"] === AUTH_ID && header["status"] === "good") {
          const delivery = isRecord(header["delivery"]) ? header["delivery"] : {};
          this.delivery = { ack: delivery["ack"] === true, reset: delivery["reset"] === true };
          // A new store: the seqs counted before mean nothing now.
          if (this.delivery.reset) this.lastSeq = this.#ackedSeq = 0;
          resolve();
          return;
        }
        const error = errorInfoOf(header);
        const why = error ? `${error.code}: ${error.message}` : `unexpected reply ${JSON.stringify(frame).slice(0, 200)}`;
        reject(new BesterClientError(error?.code ?? "protocol_error", `login refused for '${this.username}': ${why}`));
        this.#wire?.destroy();
      };
      this.closed.then((info) => {
        if (this.#onLoginFrame === undefined) return;
        this.#onLoginFrame = undefined;
        const why = info.fatal
          ? `${info.fatal.code}: ${info.fatal.message}`
          : info.error
            ? info.error.message
            : "the server closed the connection without answering";
        reject(new BesterClientError(info.fatal?.code ?? "connection_closed", `login failed for '${this.username}': ${why}`));
      });
      this.#wire!.send(
        frameJson({
          header: { scope: "client", authentication: { username: this.username, password }, ...(ack ? { delivery: { ack: true } } : {}) },
          payload: { type: "dummy", id: "login", data: null },
        }),
      );
    });
  }

  send(type: string, data: unknown = null): Promise<StatusReport> {
    if (this.#closeInfo !== undefined || this.#closing) {
      return Promise.reject(new BesterClientError("connection_closed", this.#closedMessage()));
    }
    const id = `m-${++this.#seq}`;
    let json: string;
    try {
      json = frameJson({ payload: { type, id, data: data === undefined ? null : data } });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#wire!.send(json);
    });
  }

  async *messages(): AsyncIterableIterator<ReceivedMessage> {
    for (;;) {
      const next = this.#inbox.shift();
      if (next !== undefined) {
        // Handed to the application: from now on it is the application's, and acknowledged in the next batch.
        if (next.seq !== undefined) this.#handedOver(next.seq);
        yield next;
        continue;
      }
      if (this.#closeInfo !== undefined) return;
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  async acknowledge(): Promise<void> {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const seq = this.lastSeq;
    if (!this.delivery.ack || seq <= this.#ackedSeq || this.#closeInfo !== undefined) return;
    this.#ackedSeq = seq;
    const id = `ack-${++this.#ackSeq}`;
    const report = await new Promise<StatusReport>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#wire!.send(frameJson({ payload: { type: "builtin", id, data: { command: { type: "ack", args: { seq } } } } }));
    });
    if (report.status === "bad") throw new BesterClientError(report.error?.code ?? "bad_ack", report.error?.message ?? "acknowledgement refused");
  }

  #handedOver(seq: number): void {
    if (seq > this.lastSeq) this.lastSeq = seq;
    if (this.lastSeq - this.#ackedSeq >= this.#ackEvery) void this.acknowledge().catch(() => {});
    else if (this.#ackTimer === undefined) {
      this.#ackTimer = setTimeout(() => void this.acknowledge().catch(() => {}), this.#ackAfterMs);
    }
  }

  async close(): Promise<ClientClosed> {
    if (this.#closeInfo === undefined && !this.#closing) {
      // What the application has is acknowledged before the connection goes.
      await this.acknowledge().catch(() => {});
    }
    if (this.#closeInfo === undefined && !this.#closing) {
      this.#closing = true;
      this.#wire!.end();
      const timer = setTimeout(() => this.#wire!.destroy(), CLOSE_WAIT_MS);
      void this.closed.then(() => clearTimeout(timer));
    }
    return this.closed;
  }

  frame(value: unknown): void {
    if (!isRecord(value)) return;
    if (this.#onLoginFrame !== undefined) {
      this.#onLoginFrame(value);
      return;
    }
    const header = isRecord(value["header"]) ? value["header"] : {};
    const payload = isRecord(value["payload"]) ? value["payload"] : {};
    switch (header["messageType"]) {
      case "receivedMessage": {
        const seq = header["seq"];
        const message: ReceivedMessage = { type: String(payload["type"] ?? ""), data: payload["data"] ?? null };
        if (typeof seq === "number") {
          // Sent again (a connection lost before its acknowledgement): the application has it already;
          // acknowledge it, so the server stops keeping it.
          if (seq <= this.lastSeq) return this.#handedOver(seq);
          message.seq = seq;
        }
        this.#inbox.push(message);
        for (const wake of this.#wake.splice(0)) wake();
        return;
      }
      case "statusReport": {
        const id = String(payload["id"]);
        const status = header["status"] === "good" ? "good" : "bad";
        const report: StatusReport = { id, status };
        const error = errorInfoOf(header);
        if (error) report.error = error;
        const undelivered = header["undelivered"];
        if (Array.isArray(undelivered)) report.undelivered = undelivered.map(String);
        const queued = header["queued"];
        if (Array.isArray(queued)) report.queued = queued.map(String);
        if (Object.hasOwn(payload, "data")) report.data = payload["data"];
        this.#settle(id, report);
        return;
      }
      case "fatal":
        this.#fatal = errorInfoOf(header) ?? { code: "unknown", message: "fatal error without details" };
        return;
    }
    // The dummy reply carries no messageType (PROTOCOL.md §3).
    if (header["status"] === "0" && payload["type"] === "dummy") {
      const id = String(payload["id"]);
      this.#settle(id, { id, status: "good" });
    }
    // Anything else is a message kind this SDK does not know yet: ignored, not fatal.
  }

  failed(err: Error): void {
    this.#error ??= err;
  }

  #settle(id: string, report: StatusReport): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    pending.resolve(report);
  }

  #closedMessage(): string {
    if (this.#fatal) return `connection closed by the server: ${this.#fatal.code}: ${this.#fatal.message}`;
    if (this.#error) return `connection failed: ${this.#error.message}`;
    return this.#closing ? "connection closed by the client" : "connection closed by the server";
  }

  ended(code?: number): void {
    if (this.#closeInfo !== undefined) return;
    const info: ClientClosed = this.#closing && !this.#fatal
      ? { by: "client" }
      : this.#error && !this.#fatal
        ? { by: "error", error: this.#error }
        : this.#fatal
          ? { by: "server", fatal: this.#fatal }
          : { by: "server" };
    if (code !== undefined) info.code = code;
    this.#closeInfo = info;
    clearTimeout(this.#ackTimer);
    const message = this.#closedMessage();
    for (const [, pending] of this.#pending) pending.reject(new BesterClientError(this.#fatal?.code ?? "connection_closed", message));
    this.#pending.clear();
    for (const wake of this.#wake.splice(0)) wake();
    this.#resolveClosed(info);
  }
}

/**
 * Connects with `open` and logs in, all within the options' timeout.
 *
 * @param open the transport (socket or WebSocket), not yet opened
 * @param where the address as messages name it
 */
export async function connectWith(open: OpenWire, where: string, options: ConnectClientOptions): Promise<BesterClient> {
  const { username, password } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const client = new Client(username, options.ack, options.lastSeq ?? 0);
  const events: WireEvents = {
    frame: (value) => client.frame(value),
    failed: (err) => client.failed(err),
    closed: (code) => client.ended(code),
  };
  let wire: ClientWire | undefined;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      wire?.destroy();
      reject(new BesterClientError("timeout", `no login answer from ${where} within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    const opening = open(events);
    // A connection that comes up after the deadline is nobody's: drop it.
    opening.then((late) => timedOut && late.destroy(), () => {});
    wire = await Promise.race([deadline, opening]);
    client.attach(wire);
    const ack = options.ack !== undefined && options.ack !== false;
    await Promise.race([deadline, client.login(password, ack)]);
    return client;
  } catch (err) {
    wire?.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Largest frame a client accepts from the server, as the options say. */
export function maxFrameBytesOf(options: ConnectClientOptions): number {
  return options.maxFrameBytes ?? DEFAULT_CLIENT_MAX_FRAME_BYTES;
}
