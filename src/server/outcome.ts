/**
 * What a message comes to, as data: a report for its sender (good, bad),
 * the dummy reply, a close, or a handler's checked answer whose command is
 * still to be carried out. The router, the handler exchange and the
 * commands produce these; the session's order carries out a command when
 * its message reaches the head, and the reply writer renders the rest.
 * @module
 */
import type { HandlerEntry } from "../handlers/host.ts";
import type { HandlerResponse } from "../protocol/messages.ts";
import { type ErrorInfo, ErrorCodes } from "../protocol/reports.ts";
import type { TypeStats } from "./stats.ts";

/** A good status report; `header` adds fields beside `status` (Extension), `data` answers (builtin whoami). */
export interface Good {
  kind: "good";
  header?: Record<string, unknown>;
  data?: unknown;
}

/** A bad status report with its error; `header` adds fields (e.g. `failedServers`). */
export interface Bad {
  kind: "bad";
  error: ErrorInfo;
  header?: Record<string, unknown>;
}

/** A handler's answer, checked, whose command is carried out in its message's turn. */
export interface Command {
  kind: "command";
  response: HandlerResponse;
  /** The handler that answered, and the counters of its type. */
  entry: HandlerEntry;
  counters: TypeStats;
  /** Handler types the message passed through before this one (sendHandler). */
  via: string[];
}

export type Outcome = Good | Bad | Command | { kind: "dummy" } | { kind: "close" };

/**
 * What carrying out a command may answer instead of an outcome: the
 * outcome comes later (to the slot), but what the command set going is
 * already in order behind the messages before it (a store's calls are
 * answered in the order made), so the messages after it may go ahead.
 */
export const PIPELINED: unique symbol = Symbol("pipelined");
export type Pipelined = typeof PIPELINED;

/** Where an outcome that is not known at once goes when it is. */
export interface Settle {
  settle(outcome: Outcome): void;
}

/** The plain good report (shared: never modified). */
export const GOOD: Good = Object.freeze({ kind: "good" });
export const DUMMY: Outcome = Object.freeze({ kind: "dummy" });
export const CLOSE: Outcome = Object.freeze({ kind: "close" });

export function bad(error: ErrorInfo, header?: Record<string, unknown>): Bad {
  return header === undefined ? { kind: "bad", error } : { kind: "bad", error, header };
}

export function good(header?: Record<string, unknown>, data?: unknown): Good {
  if (header === undefined && data === undefined) return GOOD;
  const out: Good = { kind: "good" };
  if (header !== undefined) out.header = header;
  if (data !== undefined) out.data = data;
  return out;
}

/** An unexpected failure while working on a message, as its bad report. */
export function internalFailure(err: unknown): Bad {
  return bad({ code: ErrorCodes.internal, message: err instanceof Error ? err.message : String(err) });
}
