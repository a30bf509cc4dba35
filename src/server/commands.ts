/**
 * Carries a client's message to its handler and carries out the handler's
 * answer (PROTOCOL.md §4): sendClients, sendHandler (bounded hops), and
 * sendServers (to peer servers, bounded server hops; see peers.ts).
 * @module
 */
import type { HandlerEntry, HandlerHost } from "../handlers/host.ts";
import type { HandlerError, LinkReply } from "../handlers/link.ts";
import type { Logger } from "../log/logger.ts";
import { encodeJsonFrame, frameJson } from "../protocol/frame.ts";
import { RawJson } from "../protocol/json-cut.ts";
import { type HandlerResponse, handlerResponseOf, parseHandlerResponse } from "../protocol/messages.ts";
import { DELIVERY_HEAD, deliveryTail, type ErrorInfo, ErrorCodes, receivedMessageJson, statusReport } from "../protocol/reports.ts";
import type { ClientRegistry } from "./registry.ts";
import type { Federation } from "./peers.ts";
import type { HandlerDispatch } from "./router.ts";
import { NO_FRAMES, type Outcome, type RouteResult, type Session } from "./session.ts";
import type { Stats, TypeStats } from "./stats.ts";

/** What a handler receives with `"envelope": true` (PROTOCOL.md §4, Extension). */
export interface EnvelopeMeta {
  from: string;
  scope: "client" | "server";
  id: string;
  type: string;
  /** Handler types this message already passed through by sendHandler, oldest first. */
  via: string[];
}

/** Why a handler's answer is not usable. A class, so a good answer needs no wrapper. */
class Refusal {
  constructor(readonly error: ErrorInfo) {}
}

function bad(id: string, error: ErrorInfo): RouteResult {
  return { frames: [statusReport(id, "bad", error)] };
}

export interface CommandDeps {
  host: HandlerHost;
  registry: ClientRegistry;
  limits: { maxHandlerHops: number };
  log: Logger;
  stats: Stats;
  /** Delivers sendServers; without it sendServers answers not_implemented. */
  federation?: Federation;
}

export function createHandlerDispatch(deps: CommandDeps): HandlerDispatch {
  const { host, registry, log, stats } = deps;

  /**
   * One question to a handler and, once it is answered, the result that
   * carries the answer out in the message's turn (`deferred`). The link's
   * reply, that result and the state between them are this one object, so a
   * handled message costs one allocation, not a closure and scope per step.
   */
  class Exchange implements LinkReply, RouteResult {
    readonly frames = NO_FRAMES;
    sentAt = 0;
    #response: HandlerResponse | undefined;

    constructor(
      readonly session: Session,
      /**
       * The message's id, not its payload: this is held for the handler's
       * round trip, and a payload held that long (with a large frame's text)
       * outlives young collections and waits for a full one to be freed.
       */
      readonly id: string,
      readonly entry: HandlerEntry,
      /** The counters of the entry's type. */
      readonly counters: TypeStats,
      /** Handler types the message passed through before this one. */
      readonly via: string[],
      readonly outcome: Outcome,
    ) {}

    answered(err: HandlerError | undefined, value?: unknown): void {
      const type = this.entry.config.type;
      this.counters.handlerLatency(performance.now() - this.sentAt);
      if (err !== undefined) return this.failed(err.code, err.message);
      const answer = checkAnswer(type, this.counters, value);
      if (answer instanceof Refusal) return this.outcome.settle(bad(this.id, answer.error));
      this.#response = answer;
      // Carried out in the order the client sent its messages, so deliveries keep that order too.
      this.outcome.settle(this);
    }

    /** No answer: counted as the handler's failure. */
    failed(code: string, message: string): void {
      const type = this.entry.config.type;
      this.counters.handlerFailures++;
      this.outcome.settle(bad(this.id, { code, message: `handler "${type}": ${message}` }));
    }

    deferred(): RouteResult | Promise<RouteResult> {
      return execute(this.session, this.id, this.entry, this.counters, this.#response!, this.via);
    }
  }

  /**
   * Asks `entry`'s handler about message `id` (`data` is what to send: the
   * message's data, or the previous handler's along a sendHandler chain).
   * `outcome` is settled with a bad report, or with the result that carries
   * out the answer. Never throws.
   */
  function ask(
    entry: HandlerEntry,
    counters: TypeStats,
    session: Session,
    id: string,
    data: unknown,
    via: string[],
    outcome: Outcome,
  ): void {
    const type = entry.config.type;
    let json: string;
    try {
      // A long message's data goes on as the text it arrived as (RawJson), not serialised again.
      if (!entry.config.envelope) json = data instanceof RawJson ? data.text : frameJson(data);
      else {
        const meta = metaOf(session, id, type, via);
        // The same JSON as serialising {data, meta}.
        json = data instanceof RawJson ? '{"data":' + data.text + ',"meta":' + frameJson(meta) + "}" : frameJson({ data, meta });
      }
    } catch (err) {
      return outcome.settle(bad(id, { code: ErrorCodes.handlerFailed, message: `handler "${type}": ${(err as Error).message}` }));
    }
    const exchange = new Exchange(session, id, entry, counters, via, outcome);
    try {
      entry.link.request(json, entry.config.timeoutMs, exchange);
    } catch (err) {
      exchange.failed(ErrorCodes.handlerFailed, (err as Error).message);
    }
  }

  function checkAnswer(type: string, counters: TypeStats, value: unknown): HandlerResponse | Refusal {
    // The usual good answer by hand; anything else (a failure, the early
    // spec's shape, a malformed answer) by the full parse.
    let response = handlerResponseOf(value);
    if (response === undefined) {
      const parsed = parseHandlerResponse(value);
      if (!parsed.ok) {
        counters.handlerFailures++;
        return new Refusal({
          code: ErrorCodes.handlerFailed,
          message: `handler "${type}" sent a malformed answer: ${parsed.problem.message}`,
        });
      }
      response = parsed.response;
    }
    if (response.status !== "0") return new Refusal(handlerError(type, response.status, value));
    if (!response.command) {
      return new Refusal({ code: ErrorCodes.badCommand, message: `handler "${type}" answered "0" without a command` });
    }
    return response;
  }

  function sendClients(id: string, type: string, counters: TypeStats, users: unknown, data: unknown): RouteResult {
    const names = typeof users === "string" ? [users] : users;
    if (!Array.isArray(names) || !names.every((u) => typeof u === "string")) {
      return bad(id, {
        code: ErrorCodes.badCommand,
        message: `handler "${type}": sendClients needs a list of usernames, got ${JSON.stringify(users)?.slice(0, 60)}`,
      });
    }
    // The delivery is written as three parts (head, data, tail) straight into
    // the first recipient's buffer: no object to serialise, no joined string.
    // Any further recipients share one encoding.
    const dataJson = data instanceof RawJson ? data.text : JSON.stringify(data);
    if (dataJson === undefined) {
      // Data JSON cannot carry (undefined): the key is left out, as JSON.stringify does.
      return sendClientsJson(id, counters, names as string[], receivedMessageJson(type, undefined), "", "");
    }
    return sendClientsJson(id, counters, names as string[], DELIVERY_HEAD, dataJson, deliveryTail(type));
  }

  /** Delivers the frame `head + body + tail` to every session of the named users. */
  function sendClientsJson(id: string, counters: TypeStats, names: string[], head: string, body: string, tail: string): RouteResult {
    // The usual case, one user with one session, needs no closure and no list.
    if (names.length === 1) {
      const found = registry.lookup(names[0]!);
      if (found !== undefined && !(found instanceof Set)) {
        if (!found.sendJson(head, body, tail)) return notWritten(id, names);
        counters.delivered++;
        return DELIVERED;
      }
    }
    let frame: Uint8Array | undefined;
    let recipients = 0;
    let undelivered: string[] | undefined;
    let failedUsers: string[] | undefined;
    const deliver = (s: Session, name: string) => {
      const sent = recipients++ === 0 ? s.sendJson(head, body, tail) : s.sendBytes((frame ??= encodeJsonFrame(head + body + tail)));
      if (sent) counters.delivered++;
      else if (!failedUsers?.includes(name)) (failedUsers ??= []).push(name);
    };
    for (const name of names.length === 1 ? names : new Set(names)) {
      const found = registry.lookup(name);
      if (found === undefined) {
        (undelivered ??= []).push(name);
        continue;
      }
      if (!(found instanceof Set)) {
        deliver(found, name);
        continue;
      }
      for (const s of found) deliver(s, name);
    }
    if (failedUsers !== undefined) return notWritten(id, failedUsers);
    if (undelivered === undefined) return DELIVERED;
    const report = statusReport(id, "good") as { header: Record<string, unknown> };
    // Extension: the original silently ignored users who were not connected; say who they were.
    report.header.undelivered = undelivered;
    return { frames: [report] };
  }

  /**
   * Sends the answer's data to every named server at once; good only when each
   * one's status report said good (an original peer: once it was written).
   */
  async function sendServers(session: Session, id: string, type: string, servers: unknown, data: unknown): Promise<RouteResult> {
    const federation = deps.federation;
    if (!federation) {
      return bad(id, { code: ErrorCodes.notImplemented, message: `handler "${type}" asked for sendServers, which this server does not serve` });
    }
    const targets = typeof servers === "string" ? [servers] : servers;
    if (!Array.isArray(targets) || !targets.every((t) => typeof t === "string")) {
      return bad(id, {
        code: ErrorCodes.badCommand,
        message: `handler "${type}": sendServers needs a list of "host:port" strings, got ${JSON.stringify(servers)?.slice(0, 60)}`,
      });
    }
    const hops = session.hops + 1;
    if (hops > federation.maxHops) {
      log.warn("sendServers hop limit reached", { type, hops, peer: session.peer });
      return bad(id, {
        code: ErrorCodes.hopLimit,
        message: `sendServers would make server hop ${hops}, more than federation.maxHops (${federation.maxHops}) allows; a forwarding loop?`,
      });
    }
    const failed = await federation.send(targets as string[], { type, data }, hops);
    if (failed.length === 0) return { frames: [statusReport(id, "good")] };
    const n = new Set(targets).size;
    // A loop stopped further along stays recognisable as one at every server it passed.
    const code = failed.every((f) => f.code === ErrorCodes.hopLimit) ? ErrorCodes.hopLimit : ErrorCodes.peerFailed;
    const list = failed.map((f) => `${f.server} (${f.code}: ${f.message})`).join("; ");
    const report = statusReport(id, "bad", {
      code,
      message: `${failed.length} of ${n} server${n === 1 ? "" : "s"} did not accept the message: ${list}`,
    }) as { header: Record<string, unknown> };
    // Extension: which servers failed and why, for machines.
    report.header.failedServers = failed;
    return { frames: [report] };
  }

  /** Carries out a handler's command; synchronous for sendClients, the common case. */
  function execute(
    session: Session,
    id: string,
    entry: HandlerEntry,
    counters: TypeStats,
    response: HandlerResponse,
    via: string[],
  ): RouteResult | Promise<RouteResult> {
    const type = entry.config.type;
    const command = response.command!;
    switch (command.type) {
      case "sendClients":
        return sendClients(id, type, counters, command.data, response.data);
      case "sendHandler": {
        const name = command.data;
        const next = typeof name === "string" ? host.get(name) : undefined;
        if (!next) {
          return bad(id, {
            code: ErrorCodes.badCommand,
            message: `handler "${type}": sendHandler names ${JSON.stringify(name)}, which is not a configured handler`,
          });
        }
        const chain = [...via, type];
        if (chain.length > deps.limits.maxHandlerHops) {
          log.warn("sendHandler hop limit reached", { chain: [...chain, next.config.type].join(" -> ") });
          return bad(id, {
            code: ErrorCodes.hopLimit,
            message: `sendHandler chain longer than ${deps.limits.maxHandlerHops} hops: ${[...chain, next.config.type].join(" -> ")}`,
          });
        }
        // Settled with the next handler's Exchange: the session carries out its answer in turn.
        return new Promise((resolve) => ask(next, stats.forType(next.config.type), session, id, response.data, chain, {
            settle: resolve,
          }));
      }
      case "sendServers":
        return sendServers(session, id, type, command.data, response.data);
      default:
        return bad(id, {
          code: ErrorCodes.badCommand,
          message: `handler "${type}" answered with unknown command "${command.type}"; known: sendClients, sendHandler, sendServers`,
        });
    }
  }

  return {
    types: () => host.types(),
    dispatch(session, payload, outcome) {
      const entry = host.get(payload.type);
      if (entry === undefined) return false;
      const counters = stats.forType(entry.config.type);
      counters.messagesIn++;
      ask(entry, counters, session, payload.id, payload.data, NO_HOPS, outcome);
      return true;
    },
  };
}

function notWritten(id: string, users: string[]): RouteResult {
  return bad(id, { code: ErrorCodes.deliveryFailed, message: `could not write to the sessions of: ${users.join(", ")}` });
}

/** The result of a delivery that reached everyone: a good report, nothing else (shared). */
const DELIVERED: RouteResult = Object.freeze({ frames: NO_FRAMES, good: true });

/** The `via` of a message no handler has passed on yet; never modified (chains are copied). */
const NO_HOPS = Object.freeze([]) as unknown as string[];

function metaOf(session: Session, id: string, type: string, via: string[]): EnvelopeMeta {
  // From a peer server, "from" is that server's name (or address, for an original server).
  if (session.kind === "server") return { from: session.peer ?? "", scope: "server", id, type, via };
  return { from: session.username ?? "", scope: "client", id, type, via };
}

/** A failing handler's own error (Extension: `header.error`) or a generic one naming its status. */
function handlerError(type: string, status: string, raw: unknown): ErrorInfo {
  const e = (raw as { header?: { error?: { code?: unknown; message?: unknown } } })?.header?.error;
  if (e && typeof e.message === "string") {
    return { code: typeof e.code === "string" && e.code ? e.code : ErrorCodes.handlerFailed, message: e.message };
  }
  return { code: ErrorCodes.handlerFailed, message: `handler "${type}" answered status "${status}"` };
}
