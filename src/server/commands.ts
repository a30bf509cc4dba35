/**
 * Carries a client's message to its handler and carries out the handler's
 * answer (PROTOCOL.md §4): sendClients, sendHandler (bounded hops), and
 * sendServers (to peer servers, bounded server hops; see peers.ts).
 * @module
 */
import type { HandlerEntry, HandlerHost } from "../handlers/host.ts";
import type { Logger } from "../log/logger.ts";
import { encodeJsonFrame, frameJson } from "../protocol/frame.ts";
import { type ClientPayload, type HandlerResponse, handlerDataText, handlerResponseOf, parseHandlerResponse } from "../protocol/messages.ts";
import { DELIVERY_HEAD, deliveryTail, type ErrorInfo, ErrorCodes, receivedMessageJson, statusReport } from "../protocol/reports.ts";
import type { ClientRegistry } from "./registry.ts";
import type { Federation } from "./peers.ts";
import type { HandlerDispatch } from "./router.ts";
import { NO_FRAMES, type RouteResult, type Session } from "./session.ts";
import type { Stats } from "./stats.ts";

/** What a handler receives with `"envelope": true` (PROTOCOL.md §4, Extension). */
export interface EnvelopeMeta {
  from: string;
  scope: "client" | "server";
  id: string;
  type: string;
  /** Handler types this message already passed through by sendHandler, oldest first. */
  via: string[];
}

/** Why a handler gave no usable answer. A class, so a good answer needs no wrapper. */
class Refusal {
  constructor(readonly error: ErrorInfo) {}
}

type Answer = HandlerResponse | Refusal;

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

  function failed(type: string, code: string, message: string, done: (answer: Answer) => void): void {
    stats.handlerFailure(type);
    done(new Refusal({ code, message: `handler "${type}": ${message}` }));
  }

  /**
   * Asks `entry`'s handler about `payload`'s message (`data` is what to send:
   * the payload's data, or the previous handler's along a sendHandler chain).
   * `done` gets the checked answer. Never throws, never calls `done` twice.
   */
  function ask(
    entry: HandlerEntry,
    session: Session,
    payload: ClientPayload,
    data: unknown,
    dataText: string | undefined,
    via: string[],
    done: (answer: Answer) => void,
  ): void {
    const type = entry.config.type;
    let json: string;
    try {
      if (!entry.config.envelope) json = dataText ?? frameJson(data);
      else {
        const meta = metaOf(session, payload, type, via);
        // The same JSON as serialising {data, meta}, with data's text as it arrived.
        json = dataText === undefined ? frameJson({ data, meta }) : '{"data":' + dataText + ',"meta":' + frameJson(meta) + "}";
      }
    } catch (err) {
      return done(new Refusal({ code: ErrorCodes.handlerFailed, message: `handler "${type}": ${(err as Error).message}` }));
    }
    const started = performance.now();
    try {
      entry.link.request(json, entry.config.timeoutMs, (err, value, text) => {
        stats.handlerLatency(type, performance.now() - started);
        if (err !== undefined) return failed(type, err.code, err.message, done);
        done(checkAnswer(type, value, text!));
      });
    } catch (err) {
      failed(type, ErrorCodes.handlerFailed, (err as Error).message, done);
    }
  }

  function checkAnswer(type: string, value: unknown, text: string): Answer {
    // The usual good answer by hand; anything else (a failure, the early
    // spec's shape, a malformed answer) by the full parse.
    let response = handlerResponseOf(value);
    if (response === undefined) {
      const parsed = parseHandlerResponse(value);
      if (!parsed.ok) {
        stats.handlerFailure(type);
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
    response.dataText = handlerDataText(value, text);
    return response;
  }

  function sendClients(id: string, type: string, users: unknown, data: unknown, dataText: string | undefined): RouteResult {
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
    const dataJson = dataText ?? JSON.stringify(data);
    if (dataJson === undefined) {
      // Data JSON cannot carry (undefined): the key is left out, as JSON.stringify does.
      return sendClientsJson(id, type, names as string[], receivedMessageJson(type, undefined), "", "");
    }
    return sendClientsJson(id, type, names as string[], DELIVERY_HEAD, dataJson, deliveryTail(type));
  }

  /** Delivers the frame `head + body + tail` to every session of the named users. */
  function sendClientsJson(id: string, type: string, names: string[], head: string, body: string, tail: string): RouteResult {
    let frame: Uint8Array | undefined;
    let recipients = 0;
    let undelivered: string[] | undefined;
    let failedUsers: string[] | undefined;
    const deliver = (s: Session, name: string) => {
      const sent = recipients++ === 0 ? s.sendJson(head, body, tail) : s.sendBytes((frame ??= encodeJsonFrame(head + body + tail)));
      if (sent) stats.delivered(type);
      else if (!failedUsers?.includes(name)) (failedUsers ??= []).push(name);
    };
    for (const name of names.length === 1 ? names : new Set(names)) {
      const found = registry.lookup(name);
      if (found === undefined) {
        (undelivered ??= []).push(name);
        continue;
      }
      // Most users have one session: no array or iterator for them.
      if (!(found instanceof Set)) {
        deliver(found, name);
        continue;
      }
      for (const s of found) deliver(s, name);
    }
    if (failedUsers !== undefined) {
      return bad(id, { code: ErrorCodes.deliveryFailed, message: `could not write to the sessions of: ${failedUsers.join(", ")}` });
    }
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
    payload: ClientPayload,
    entry: HandlerEntry,
    response: HandlerResponse,
    via: string[],
  ): RouteResult | Promise<RouteResult> {
    const type = entry.config.type;
    const command = response.command!;
    switch (command.type) {
      case "sendClients":
        return sendClients(payload.id, type, command.data, response.data, response.dataText);
      case "sendHandler": {
        const name = command.data;
        const next = typeof name === "string" ? host.get(name) : undefined;
        if (!next) {
          return bad(payload.id, {
            code: ErrorCodes.badCommand,
            message: `handler "${type}": sendHandler names ${JSON.stringify(name)}, which is not a configured handler`,
          });
        }
        const chain = [...via, type];
        if (chain.length > deps.limits.maxHandlerHops) {
          log.warn("sendHandler hop limit reached", { chain: [...chain, next.config.type].join(" -> ") });
          return bad(payload.id, {
            code: ErrorCodes.hopLimit,
            message: `sendHandler chain longer than ${deps.limits.maxHandlerHops} hops: ${[...chain, next.config.type].join(" -> ")}`,
          });
        }
        return new Promise((resolve) =>
          ask(next, session, payload, response.data, response.dataText, chain, (answer) => {
            if (answer instanceof Refusal) return resolve(bad(payload.id, answer.error));
            try {
              resolve(execute(session, payload, next, answer, chain));
            } catch (err) {
              resolve(bad(payload.id, { code: ErrorCodes.internal, message: (err as Error).message }));
            }
          }),
        );
      }
      case "sendServers":
        return sendServers(session, payload.id, type, command.data, response.data);
      default:
        return bad(payload.id, {
          code: ErrorCodes.badCommand,
          message: `handler "${type}" answered with unknown command "${command.type}"; known: sendClients, sendHandler, sendServers`,
        });
    }
  }

  /**
   * A handler's answer waiting for its turn: the result whose deferred step
   * carries it out. One object per message where a closure, its scope and a
   * result object were three.
   */
  class Answered implements RouteResult {
    readonly frames = NO_FRAMES;
    constructor(
      readonly session: Session,
      readonly payload: ClientPayload,
      readonly entry: HandlerEntry,
      readonly response: HandlerResponse,
    ) {}

    deferred(): RouteResult | Promise<RouteResult> {
      return execute(this.session, this.payload, this.entry, this.response, NO_HOPS);
    }
  }

  return {
    has: (type) => host.get(type) !== undefined,
    types: () => host.types(),
    dispatch(session, payload, settle) {
      const entry = host.get(payload.type)!;
      ask(entry, session, payload, payload.data, payload.dataText, NO_HOPS, (answer) => {
        if (answer instanceof Refusal) return settle(bad(payload.id, answer.error));
        // Carried out in the order the client sent its messages, so deliveries keep that order too.
        settle(new Answered(session, payload, entry, answer));
      });
    },
  };
}

/** The result of a delivery that reached everyone: a good report, nothing else (shared). */
const DELIVERED: RouteResult = Object.freeze({ frames: NO_FRAMES, good: true });

/** The `via` of a message no handler has passed on yet; never modified (chains are copied). */
const NO_HOPS = Object.freeze([]) as unknown as string[];

function metaOf(session: Session, payload: ClientPayload, type: string, via: string[]): EnvelopeMeta {
  // From a peer server, "from" is that server's name (or address, for an original server).
  if (session.kind === "server") return { from: session.peer ?? "", scope: "server", id: payload.id, type, via };
  return { from: session.username ?? "", scope: "client", id: payload.id, type, via };
}

/** A failing handler's own error (Extension: `header.error`) or a generic one naming its status. */
function handlerError(type: string, status: string, raw: unknown): ErrorInfo {
  const e = (raw as { header?: { error?: { code?: unknown; message?: unknown } } })?.header?.error;
  if (e && typeof e.message === "string") {
    return { code: typeof e.code === "string" && e.code ? e.code : ErrorCodes.handlerFailed, message: e.message };
  }
  return { code: ErrorCodes.handlerFailed, message: `handler "${type}" answered status "${status}"` };
}
