/**
 * One question to a handler (PROTOCOL.md §4): the request as the handler
 * expects it (the bare data, or with `"envelope": true` the data and who
 * sent it), and the answer checked into an outcome: a command to carry out
 * in the message's turn, or a bad report saying what was wrong.
 * @module
 */
import type { HandlerEntry } from "../handlers/host.ts";
import type { HandlerError, LinkReply } from "../handlers/link.ts";
import { frameJson } from "../protocol/frame.ts";
import { RawJson } from "../protocol/json-cut.ts";
import { type HandlerResponse, handlerResponseOf, parseHandlerResponse } from "../protocol/messages.ts";
import { type ErrorInfo, ErrorCodes } from "../protocol/reports.ts";
import { type Bad, bad, type Command, type Settle } from "./outcome.ts";
import type { Session } from "./session.ts";
import type { TypeStats } from "./stats.ts";

/** What a handler receives with `"envelope": true` (PROTOCOL.md §4, Extension). */
export interface EnvelopeMeta {
  from: string;
  scope: "client" | "server";
  id: string;
  type: string;
  /** Handler types this message already passed through by sendHandler, oldest first. */
  via: string[];
}

/** The `via` of a message no handler has passed on yet; never modified (chains are copied). */
export const NO_HOPS = Object.freeze([]) as unknown as string[];

/**
 * Waits for one handler's answer and settles the message with it. The
 * link's reply, the state it needs and the command it comes to are this one
 * object: one allocation per handled message.
 */
class Exchange implements LinkReply, Command {
  readonly kind = "command";
  sentAt = 0;
  response!: HandlerResponse;

  constructor(
    readonly entry: HandlerEntry,
    /** The counters of the entry's type. */
    readonly counters: TypeStats,
    /** Handler types the message passed through before this one. */
    readonly via: string[],
    readonly slot: Settle,
  ) {}

  answered(err: HandlerError | undefined, value?: unknown): void {
    this.counters.handlerLatency(performance.now() - this.sentAt);
    if (err !== undefined) return this.failed(err.code, err.message);
    const answer = checkAnswer(this.entry.config.type, this.counters, value);
    if ((answer as Bad).kind === "bad") return this.slot.settle(answer as Bad);
    this.response = answer as HandlerResponse;
    this.slot.settle(this);
  }

  /** No answer: counted as the handler's failure. */
  failed(code: string, message: string): void {
    this.counters.handlerFailures++;
    this.slot.settle(bad({ code, message: `handler "${this.entry.config.type}": ${message}` }));
  }
}

/**
 * Asks `entry`'s handler about message `id`; `data` is what to send (the
 * message's data, or the previous handler's along a sendHandler chain).
 * `slot` is settled with the checked answer or a bad report. Never throws.
 */
export function ask(entry: HandlerEntry, counters: TypeStats, session: Session, id: string, data: unknown, via: string[], slot: Settle): void {
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
    return slot.settle(bad({ code: ErrorCodes.handlerFailed, message: `handler "${type}": ${(err as Error).message}` }));
  }
  const exchange = new Exchange(entry, counters, via, slot);
  try {
    entry.link.request(json, entry.config.timeoutMs, exchange);
  } catch (err) {
    exchange.failed(ErrorCodes.handlerFailed, (err as Error).message);
  }
}

/** The answer, when it holds a command to carry out; else what is wrong with it. */
function checkAnswer(type: string, counters: TypeStats, value: unknown): HandlerResponse | Bad {
  // The usual good answer by hand; anything else (a failure, the early
  // spec's shape, a malformed answer) by the full parse.
  let response: HandlerResponse | undefined = handlerResponseOf(value);
  if (response === undefined) {
    const parsed = parseHandlerResponse(value);
    if (!parsed.ok) {
      counters.handlerFailures++;
      return bad({ code: ErrorCodes.handlerFailed, message: `handler "${type}" sent a malformed answer: ${parsed.problem.message}` });
    }
    response = parsed.response;
  }
  if (response.status !== "0") return bad(handlerError(type, response.status, value));
  if (!response.command) return bad({ code: ErrorCodes.badCommand, message: `handler "${type}" answered "0" without a command` });
  return response;
}

function metaOf(session: Session, id: string, type: string, via: string[]): EnvelopeMeta {
  // From a peer server, "from" is that server's name (or address, for an original server).
  if (session.kind === "server") return { from: session.server?.peer ?? "", scope: "server", id, type, via };
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
