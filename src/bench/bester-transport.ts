/**
 * The bench's Bester clients, on the runtime adapter's push-based sockets
 * (each runtime's native dial behind one interface), so the load generator
 * is as cheap per message as the gateway it measures.
 *
 * - `relay`: sender `bench-t<i>` sends type "relay" with data
 *   `{"to": "bench-g<i>", "r": RUN, "s": SEQ, "t": SENT_AT, "p": PADDING}`;
 *   the relay handler answers `sendClients ["bench-g<i>"]` with that data;
 *   receiver `bench-g<i>` reads `s` and `t` from what it gets.
 * - `dummy`: sender `bench-t<i>` sends type "dummy" (same data) and the
 *   gateway answers itself; the reply carries only the id, so the send time is
 *   kept by sequence number on this side.
 * @module
 */
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS, FramedConnection } from "../connection/framed.ts";
import type { Endpoint, Runtime, TlsClientOptions } from "../runtime/types.ts";
import type { LoadSink, LoadTransport, PairLink } from "./load.ts";

export type BenchScenario = "dummy" | "relay";

export interface BesterTransportOptions {
  runtime: Runtime;
  target: Endpoint;
  /** Receivers log in here instead (bench --cluster: another node than the senders'). */
  receiverTarget?: Endpoint;
  /** Dial this WebSocket URL (bench --ws) instead of `target`. */
  url?: string;
  scenario: BenchScenario;
  /** The handler type the relay messages are sent as. */
  type: string;
  password: string;
  /** Approximate size of each message's data, as JSON. */
  size: number;
  /** Marks this run's messages, so a receiver can tell them from another run's. */
  runId: string;
  /** In-flight bound per sender; sizes the dummy send-time ring. */
  window: number;
  connectTimeoutMs?: number;
  /** Dial the target with TLS (bench --tls / --ca). */
  tls?: TlsClientOptions;
  /** Receivers ask for acknowledged delivery (PROTOCOL.md §9) and acknowledge every ACK_EVERY messages. */
  ack?: boolean;
}

/** Receivers with --ack acknowledge after this many messages, as the client SDK does by default. */
const ACK_EVERY = 32;

const LOGIN_TIMEOUT_MS = 10_000;

/** How the gateway writes the reports the bench sees most; anything else is parsed in full. */
const GOOD_REPORT_PREFIX = '{"header":{"status":"good","messageType":"statusReport"},"payload":{"id":"';
const DUMMY_REPLY_PREFIX = '{"header":{"status":"0"},"payload":{"data":null,"type":"dummy","id":"';

export function senderName(i: number): string {
  return `bench-t${i}`;
}

export function receiverName(i: number): string {
  return `bench-g${i}`;
}

/**
 * The data of one message, as JSON text with `SEQ` and `SENT` placeholders
 * cut out: the padding makes the whole about `size` bytes with typical values.
 */
export function dataTemplate(to: string, runId: string, size: number): [string, string, string] {
  const head = `{"to":"${to}","r":"${runId}","s":`;
  const mid = `,"t":`;
  const tail = `,"p":"`;
  // A typical sequence number and timestamp: 6 and 12 characters.
  const fixed = head.length + 6 + mid.length + 12 + tail.length + 2;
  const pad = "x".repeat(Math.max(0, size - fixed));
  return [head, mid, `${tail}${pad}"}`];
}

/** Bodies above this end the stream: a bench peer never sends them, so it is a bug or the wrong server. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * One bench client connection: frames arrive as text (recognised by their
 * first characters, parsed only when they are not the usual ones); the
 * login is answered before `ready` resolves.
 */
class BenchSession extends FramedConnection {
  #loggedIn = false;
  #login: { resolve(): void; reject(err: Error): void } | undefined;
  readonly ready: Promise<void>;

  constructor(
    readonly username: string,
    readonly onFrame: (frame: string) => void,
    readonly onClose: (why: string) => void,
  ) {
    super({ maxFrameBytes: MAX_BODY_BYTES, asText: true });
    this.ready = new Promise<void>((resolve, reject) => (this.#login = { resolve, reject }));
  }

  receive(frame: unknown): void {
    if (this.#loggedIn) return this.onFrame(frame as string);
    let value: { header?: { status?: string; messageType?: string; error?: { code?: string; message?: string } }; payload?: { id?: string } };
    try {
      value = JSON.parse(frame as string);
    } catch {
      return this.#login?.reject(new Error(`${this.username}: unreadable answer to the login`));
    }
    if (value.payload?.id === "auth_special" && value.header?.status === "good") {
      this.#loggedIn = true;
      this.#login?.resolve();
    } else {
      const e = value.header?.error;
      this.#login?.reject(new Error(`${this.username}: login refused${e ? `: ${e.code}: ${e.message}` : ""}`));
    }
  }

  protected override closed(_reason: ClosedReason, detail: string | undefined): void {
    const why = `${this.username}: connection closed${detail ? `: ${detail}` : " by the server"}`;
    if (!this.#loggedIn) this.#login?.reject(new Error(why));
    else this.onClose(why);
  }
}

/**
 * Opens one connection and logs in. `onFrame` gets every frame after the
 * login answer, as text; `onClose` when the connection ends.
 */
export async function openSession(
  opts: Pick<BesterTransportOptions, "runtime" | "target" | "url" | "tls" | "password" | "connectTimeoutMs">,
  username: string,
  onFrame: (frame: string) => void,
  onClose: (why: string) => void,
  ack = false,
  target = opts.target,
): Promise<BenchSession> {
  const session = new BenchSession(username, onFrame, onClose);
  const timeoutMs = opts.connectTimeoutMs ?? LOGIN_TIMEOUT_MS;
  // Over WebSocket the same framed connection: each frame one message (PROTOCOL.md §10).
  if (opts.url !== undefined) await opts.runtime.connectWebSocket(opts.url, FRAMED_EVENTS, timeoutMs, { context: session });
  else await opts.runtime.connect(target, FRAMED_EVENTS, timeoutMs, { context: session, ...(opts.tls ? { tls: opts.tls } : {}) });
  const login = {
    header: { scope: "client", authentication: { username, password: opts.password }, ...(ack ? { delivery: { ack: true } } : {}) },
    payload: { type: "dummy", id: "login", data: null },
  };
  session.sendJson(JSON.stringify(login));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${username}: no answer to the login within ${LOGIN_TIMEOUT_MS} ms`)), LOGIN_TIMEOUT_MS);
  });
  try {
    await Promise.race([session.ready, timeout]);
    return session;
  } catch (err) {
    session.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

type ParsedFrame = {
  header?: { status?: string; messageType?: string; error?: { code?: string; message?: string } };
  payload?: { id?: string; data?: unknown };
};

function describeBad(frame: ParsedFrame): string {
  const e = frame.header?.error;
  return e ? `${e.code}: ${e.message}` : "bad status report without an error";
}

export function besterTransport(opts: BesterTransportOptions): LoadTransport {
  return {
    async openPair(index: number, sink: LoadSink): Promise<PairLink> {
      const to = receiverName(index);
      const [head, mid, tail] = dataTemplate(to, opts.runId, opts.size);
      const type = opts.scenario === "dummy" ? "dummy" : opts.type;
      const prefix = `{"header":{"scope":"client"},"payload":{"type":${JSON.stringify(type)},"id":"`;

      // Set once the run closes the pair: the closes that follow are not failures.
      let closing = false;
      const broken = (why: string) => {
        if (!closing) sink.broken(index, why);
      };

      let receiver: BenchSession | undefined;
      if (opts.scenario === "relay") {
        // With --ack: the highest seq received, and the last one acknowledged.
        let seen = 0;
        let acked = 0;
        let acks = 0;
        receiver = await openSession(
          opts,
          to,
          (frame) => {
            let value: ParsedFrame & { header?: { seq?: unknown } };
            try {
              value = JSON.parse(frame);
            } catch {
              return sink.unexpected(index, "an unreadable frame at the receiver");
            }
            const data = value.payload?.data as { r?: unknown; s?: unknown; t?: unknown } | undefined;
            if (value.header?.messageType === "receivedMessage" && data?.r === opts.runId) {
              sink.delivered(index, Number(data.s), Number(data.t));
              const seq = value.header.seq;
              if (opts.ack && typeof seq === "number" && seq > seen) {
                seen = seq;
                if (seen - acked >= ACK_EVERY) {
                  acked = seen;
                  receiver?.sendJson(`{"payload":{"type":"builtin","id":"ack-${++acks}","data":{"command":{"type":"ack","args":{"seq":${seen}}}}}}`);
                }
              }
              return;
            }
            if (value.header?.messageType === "statusReport" && String(value.payload?.id).startsWith("ack-")) {
              if (value.header.status !== "good") sink.unexpected(index, `an acknowledgement refused: ${describeBad(value)}`);
              return;
            }
            if (value.header?.messageType === "fatal") return sink.broken(index, `${to}: fatal: ${describeBad(value)}`);
            sink.unexpected(index, `a frame at the receiver: ${frame.slice(0, 120)}`);
          },
          broken,
          opts.ack === true,
          opts.receiverTarget,
        );
      }

      // dummy: send times by sequence number; at most `window` are outstanding.
      let ringSize = 1;
      while (ringSize < opts.window * 2) ringSize *= 2;
      const sentAt = new Float64Array(ringSize);
      const mask = ringSize - 1;

      const onSenderFrame = (frame: string) => {
        if (frame.startsWith(GOOD_REPORT_PREFIX)) return sink.accepted(index);
        if (opts.scenario === "dummy" && frame.startsWith(DUMMY_REPLY_PREFIX)) {
          const seq = parseInt(frame.slice(DUMMY_REPLY_PREFIX.length), 10);
          return sink.delivered(index, seq, sentAt[seq & mask]!);
        }
        let value: ParsedFrame;
        try {
          value = JSON.parse(frame);
        } catch {
          return sink.unexpected(index, "an unreadable frame at the sender");
        }
        const h = value.header;
        const id = value.payload?.id;
        if (h?.messageType === "statusReport") {
          if (h.status === "good") return sink.accepted(index);
          return sink.refused(index, Number(id), describeBad(value));
        }
        if (h?.messageType === "fatal") return sink.broken(index, `${senderName(index)}: fatal: ${describeBad(value)}`);
        if (h?.status === "0" && opts.scenario === "dummy" && typeof id === "string") {
          const seq = Number(id);
          return sink.delivered(index, seq, sentAt[seq & mask]!);
        }
        sink.unexpected(index, `a frame at the sender: ${frame.slice(0, 120)}`);
      };
      let sender: BenchSession;
      try {
        sender = await openSession(opts, senderName(index), onSenderFrame, broken);
      } catch (err) {
        closing = true;
        receiver?.destroy();
        throw err;
      }

      return {
        send(seq: number, at: number) {
          sentAt[seq & mask] = at;
          sender.sendJson(`${prefix}${seq}","data":${head}${seq}${mid}${at}${tail}}}`);
        },
        close() {
          closing = true;
          sender.close(ClosedReason.clientRequested);
          receiver?.close(ClosedReason.clientRequested);
        },
      };
    },
  };
}
