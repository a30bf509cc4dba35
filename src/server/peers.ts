/**
 * Links to other Bester servers (PROTOCOL.md §2, §4; docs/FEDERATION.md):
 * admitting a server-scope connection (credentials, or an allowed address for
 * an original server; the hop count), and delivering a `sendServers` message
 * to each target: dial with a timeout, send one server-scope frame, wait
 * (bounded) for the peer's status report.
 * @module
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { FederationConfig, PeerConfig } from "../config/types.ts";
import { readNamedFile } from "../config/named-file.ts";
import { normaliseIp, parseServerAddress } from "../config/server-address.ts";
import { isRecord, quote } from "../guard.ts";
import type { Logger } from "../log/logger.ts";
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS, FramedConnection } from "../connection/framed.ts";
import { encodeFrame, type FrameError } from "../protocol/frame.ts";
import { type ErrorInfo, ErrorCodes } from "../protocol/reports.ts";
import type { Endpoint, Runtime, TlsClientOptions } from "../runtime/types.ts";

/** The verdict on a server-scope connection's first frame. */
export type PeerAdmission =
  | {
      ok: true;
      /** The peer's configured name, or its IP address for an allowed original server. */
      peer: string;
      /** Admitted by address, without credentials. */
      original: boolean;
      /** Server hops this message has made, this one included (1 when the sender did not say). */
      hops: number;
    }
  | {
      ok: false;
      error: ErrorInfo;
      /** true: refuse with a fatal frame; false: answer with a bad status report (the hop limit). */
      fatal: boolean;
      /** For the log: why, in more detail than the peer is told. */
      reason: string;
    };

/** One target of a sendServers that did not take the message. */
export interface FailedServer {
  server: string;
  code: string;
  message: string;
}

/** What goes to the peers: the producing handler's type and its answer's data. */
export interface ServerMessage {
  type: string;
  data: unknown;
}

/** Constant-time comparison of two strings of any length (digests are equal-length). */
function sameSecret(a: string, b: string): boolean {
  const da = createHash("sha256").update(a).digest();
  const db = createHash("sha256").update(b).digest();
  return timingSafeEqual(da, db);
}


const refuse = (message: string, reason: string): PeerAdmission => ({
  ok: false,
  fatal: true,
  reason,
  error: { code: ErrorCodes.authFailed, message },
});

/**
 * Decides whether a server-scope connection may deliver its message.
 * `header` is the first frame's header; `remote` the connection's peer address.
 */
export function admitPeer(f: FederationConfig, header: Record<string, unknown>, remote: Endpoint): PeerAdmission {
  const hopsRaw = header["hops"];
  if (hopsRaw !== undefined && !(typeof hopsRaw === "number" && Number.isInteger(hopsRaw) && hopsRaw >= 1)) {
    return {
      ok: false,
      fatal: true,
      reason: "bad hop count",
      error: { code: ErrorCodes.malformed, message: `header.hops: expected an integer >= 1, got ${quote(hopsRaw)}` },
    };
  }
  // An original server sends no hop count: its message has made one hop, to us.
  const hops = hopsRaw ?? 1;
  const auth = header["authentication"];
  let admitted: { peer: string; original: boolean };
  if (auth === undefined || auth === null) {
    const ip = remote.kind === "unix" ? undefined : normaliseIp(remote.host);
    if (ip === undefined || !f.allowOriginal.includes(ip)) {
      const none = Object.keys(f.peers).length === 0 && f.allowOriginal.length === 0;
      return refuse(
        none
          ? "this server accepts no server-scope connections: it has no configured peers"
          : 'server-scope connections need header.authentication {"server", "secret"} of a configured peer',
        `no credentials, and ${ip ?? "a UNIX socket"} is not in federation.allowOriginal`,
      );
    }
    admitted = { peer: ip, original: true };
  } else {
    const server = isRecord(auth) ? auth["server"] : undefined;
    const secret = isRecord(auth) ? auth["secret"] : undefined;
    if (typeof server !== "string" || typeof secret !== "string") {
      return refuse(
        'header.authentication: expected {"server": <name>, "secret": <shared secret>}',
        "malformed credentials",
      );
    }
    const peer: PeerConfig | undefined = Object.hasOwn(f.peers, server) ? f.peers[server] : undefined;
    // One answer for an unknown name and a wrong secret, so names cannot be probed.
    const checked = peer?.secret !== undefined && sameSecret(secret, peer.secret);
    if (!checked) {
      return refuse("unknown server or wrong secret", peer ? `wrong secret for peer "${server}"` : `unknown peer "${server}"`);
    }
    admitted = { peer: server, original: false };
  }
  if (hops > f.maxHops) {
    return {
      ok: false,
      fatal: false,
      reason: `hop limit: ${hops} > ${f.maxHops}`,
      error: {
        code: ErrorCodes.hopLimit,
        message: `the message has made ${hops} server hops, more than federation.maxHops (${f.maxHops}) allows; a forwarding loop?`,
      },
    };
  }
  return { ok: true, ...admitted, hops };
}

export interface FederationDeps {
  runtime: Runtime;
  /** Read on every use, so a reloaded config applies to the next message. */
  config(): FederationConfig;
  maxFrameBytes(): number;
  maxJsonDepth(): number;
  log: Logger;
  /** Hears every close of a delivery's connection (for the metrics). */
  closed?(reason: ClosedReason): void;
}

/** Dials peers for sendServers. */
export class Federation {
  #open = new Set<PeerDelivery>();
  #tls = new WeakMap<PeerConfig, TlsClientOptions>();

  constructor(private readonly deps: FederationDeps) {}

  get maxHops(): number {
    return this.deps.config().maxHops;
  }

  /**
   * Sends `message` to every target at once; resolves when each has accepted
   * or failed (every wait is bounded). `hops` is the count the peers receive.
   * @returns the targets that did not accept it, in the order given
   */
  async send(targets: string[], message: ServerMessage, hops: number): Promise<FailedServer[]> {
    const unique = [...new Set(targets)];
    const outcomes = await Promise.all(unique.map((t) => this.#sendOne(t, message, hops)));
    return outcomes.filter((o): o is FailedServer => o !== undefined);
  }

  /**
   * How `peer` is dialled with TLS: its CA file read once per config (a
   * reload makes new peer objects, so a renewed file is read again then).
   * A file it cannot read is not remembered: the next message tries again.
   */
  #tlsOf(peer: PeerConfig): TlsClientOptions {
    let tls = this.#tls.get(peer);
    if (tls === undefined) {
      tls = peer.caFile === undefined ? {} : { ca: readNamedFile(`federation.peers.${peer.name}.caFile`, peer.caFile) };
      this.#tls.set(peer, tls);
    }
    return tls;
  }

  /** Drops connections still waiting for a report (shutdown); their senders get "bad". */
  closeAll(): void {
    for (const delivery of [...this.#open]) delivery.settle(delivery.fail(ErrorCodes.peerFailed, "the server is shutting down"), ClosedReason.shutdown);
  }

  async #sendOne(target: string, message: ServerMessage, hops: number): Promise<FailedServer | undefined> {
    const f = this.deps.config();
    const fail = (code: string, text: string): FailedServer => ({ server: target, code, message: text });
    const address = parseServerAddress(target);
    if (!address) {
      return fail(ErrorCodes.badCommand, `not a server address: expected HOST:PORT or [IPV6]:PORT`);
    }
    const peer = Object.values(f.peers).find((p) => p.address === address.key);
    if (!peer) {
      return fail(ErrorCodes.unknownPeer, `${address.key} is not a configured peer (federation.peers)`);
    }
    const id = `${f.name ?? "bester"}-${randomUUID()}`;
    const header: Record<string, unknown> = { scope: "server", hops };
    if (!peer.original) header["authentication"] = { server: f.name, secret: peer.secret };
    const frame = encodeFrame({ header, payload: { type: message.type, id, data: message.data } });
    const to: Endpoint = { kind: address.ipv6 ? "tcp6" : "tcp4", host: address.host, port: address.port };
    const log = this.deps.log.with({ peer: peer.name, server: address.key, id });
    const started = performance.now();
    let tls: TlsClientOptions | undefined;
    if (peer.tls) {
      try {
        tls = this.#tlsOf(peer);
      } catch (err) {
        return fail(ErrorCodes.peerUnreachable, (err as Error).message);
      }
    }
    const outcome = await this.#exchange(to, frame, id, f, fail, tls);
    const ms = Math.round(performance.now() - started);
    if (outcome) log.warn("peer did not accept the message", { type: message.type, hops, code: outcome.code, detail: outcome.message, ms });
    else log.debug("peer accepted the message", { type: message.type, hops, ms });
    return outcome;
  }

  /**
   * One connection: write the frame, then wait for the status report about
   * `id`. An original server reports too: it requires the id and answers
   * on the same connection before it closes.
   */
  #exchange(
    to: Endpoint,
    frame: Uint8Array,
    id: string,
    f: FederationConfig,
    fail: (code: string, text: string) => FailedServer,
    tls: TlsClientOptions | undefined,
  ): Promise<FailedServer | undefined> {
    return new Promise((resolve) => {
      const delivery = new PeerDelivery(this.deps.maxFrameBytes(), this.deps.maxJsonDepth(), id, fail, this.deps.closed, (outcome) => {
        this.#open.delete(delivery);
        resolve(outcome);
      });
      this.#open.add(delivery);
      delivery.sendBytes(frame);
      delivery.timer = setTimeout(
        () => delivery.settle(fail(ErrorCodes.peerTimeout, `no status report within ${f.replyTimeoutMs} ms`), ClosedReason.timeout),
        f.replyTimeoutMs,
      );
      this.deps.runtime
        .connect(to, FRAMED_EVENTS, f.connectTimeoutMs, { context: delivery, ...(tls ? { tls } : {}) })
        .then(undefined, (err: Error) => delivery.settle(fail(ErrorCodes.peerUnreachable, err.message), ClosedReason.socketError));
    });
  }
}

/** One message to one peer server, on a connection of its own, until the peer's verdict. */
class PeerDelivery extends FramedConnection {
  #settled = false;

  constructor(
    maxFrameBytes: number,
    maxDepth: number,
    readonly id: string,
    readonly fail: (code: string, text: string) => FailedServer,
    readonly counted: ((reason: ClosedReason) => void) | undefined,
    readonly done: (outcome: FailedServer | undefined) => void,
  ) {
    super({ maxFrameBytes, maxDepth });
  }

  /** The subclass timer is public here: the federation sets the reply deadline. */
  declare timer: ReturnType<typeof setTimeout> | undefined;

  receive(value: unknown): void {
    this.settle(verdictOf(value, this.id, this.fail), ClosedReason.exchangeDone);
  }

  protected override frameFailed(error: FrameError): void {
    this.settle(this.fail(ErrorCodes.peerFailed, `unreadable answer: ${error.message}`), ClosedReason.frameError);
  }

  protected override closed(reason: ClosedReason, detail: string | undefined): void {
    this.counted?.(reason);
    if (this.#settled) return;
    const err = this.closeReason === ClosedReason.socketError ? detail : undefined;
    this.settle(
      this.fail(
        ErrorCodes.peerFailed,
        err ? `connection failed: ${err}` : "the server closed the connection without a status report",
      ),
    );
  }

  /** The verdict: once only; the connection ends with it (gracefully when the peer took the message). */
  settle(outcome: FailedServer | undefined, reason: ClosedReason = ClosedReason.exchangeDone): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (outcome === undefined) this.close(reason);
    else this.destroy(reason);
    this.done(outcome);
  }
}

/** Reads the peer's answer: its status report about `id`, or its fatal frame. */
function verdictOf(value: unknown, id: string, fail: (code: string, text: string) => FailedServer): FailedServer | undefined {
  const header = isRecord(value) && isRecord(value["header"]) ? value["header"] : undefined;
  const payload = isRecord(value) && isRecord(value["payload"]) ? value["payload"] : undefined;
  const error = header && isRecord(header["error"]) ? header["error"] : undefined;
  const code = typeof error?.["code"] === "string" && error["code"] ? error["code"] : ErrorCodes.peerFailed;
  const text = typeof error?.["message"] === "string" ? error["message"] : undefined;
  if (header?.["messageType"] === "fatal") return fail(code, `refused: ${text ?? "fatal error"}`);
  if (header?.["messageType"] !== "statusReport" || payload?.["id"] !== id) {
    return fail(ErrorCodes.peerFailed, `expected a status report for ${id}, got ${quote(value, 80)}`);
  }
  if (header["status"] === "good") return undefined;
  return fail(code, text ?? `status "${String(header["status"])}"`);
}
