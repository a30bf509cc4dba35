/**
 * Shapes of what arrives on the wire (PROTOCOL.md §2-4), as valibot schemas,
 * with one wire-ready Problem per rejected value.
 *
 * Every schema carries, as its message, what it expects in words ("a string"),
 * so a valibot issue turns into `<path>: expected <words>, got <value>` directly.
 *
 * @module
 */

import * as v from "valibot";
import { isRecord, quote } from "../guard.ts";
import { ErrorCodes } from "./reports.ts";
import { type CutPaths, RawJson } from "./json-cut.ts";

export interface Credentials {
  /** Trimmed of surrounding white space. */
  username: string;
  password: string;
}

export interface ClientPayload {
  type: string;
  id: string;
  /**
   * In a long frame, a {@link RawJson}: data's text as it arrived, checked,
   * passed on to the handler as is, which costs less than building and
   * serialising it again. {@link dataValue} builds it for a reader.
   */
  data: unknown;
}

export type Problem = {
  /** An ErrorCodes value. */
  code: string;
  /** Path-precise, e.g. `payload.id: expected a string, got 42`. */
  message: string;
};

export type FirstFrame =
  | {
      scope: "client";
      credentials: Credentials;
      /** The first frame's own message, when it is a well-formed one (PROTOCOL.md §2, Extension). */
      payload?: ClientPayload;
      /** Why a payload that was there is not dispatched: it is not a well-formed message. */
      ignored?: string;
      /** Extension (PROTOCOL.md §9): `header.delivery.ack` is true: the client acknowledges what it receives. */
      ack: boolean;
    }
  | {
      scope: "server";
      authentication?: unknown;
      // Original senders put no id on server-scope payloads.
      payload: ClientPayload | { type: string; id?: string; data: unknown };
    };

export interface HandlerResponse {
  /** "0" means success. */
  status: string;
  /** Absent only when status is not "0". */
  command?: { type: string; data: unknown };
  /** In a long answer, a {@link RawJson} (see ClientPayload.data). */
  data: unknown;
}

/** Where a client message's data is: what the session's decoder keeps as text in a long frame (frame.ts, json-cut.ts). */
export const CLIENT_DATA_PATHS: CutPaths = [["payload", "data"]];

/** Where a handler answer's data is: top-level `data`, else the early spec's `payload.data` (see responseData). */
export const ANSWER_DATA_PATHS: CutPaths = [["data"], ["payload", "data"]];

/**
 * A message's data as a value. A long frame's data arrives as a RawJson
 * (its text, checked, for passing on); the few readers that look inside it
 * build it here.
 */
export function dataValue(data: unknown): unknown {
  return data instanceof RawJson ? data.value() : data;
}

// ---------------------------------------------------------------------------
// Issue -> Problem

type Issue = v.BaseIssue<unknown>;
type Issues = [Issue, ...Issue[]];

interface Where {
  /** Names the value itself when the issue has no path. */
  root: string;
  /** Put before every path, for values that sit inside a message (e.g. payload.data). */
  prefix?: string;
  /** Paths at or under this one are described by kind only, never quoted. */
  secret?: string;
}

function problemFrom(code: string, issues: Issues, where: Where): Problem {
  // Wire errors: the first issue is enough for the peer to fix its message.
  const issue = issues[0];
  const dot = v.getDotPath(issue);
  const path = dot === null ? where.root : where.prefix === undefined ? dot : `${where.prefix}.${dot}`;
  const secret = where.secret !== undefined && dot !== null && (dot === where.secret || dot.startsWith(`${where.secret}.`));
  const got = secret ? kindOf(issue.input) : quote(issue.input);
  return { code, message: `${path}: expected ${issue.message}, got ${got}` };
}

/** A value described without revealing it. */
function kindOf(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.trim() === "" ? (value === "" ? "an empty string" : "a blank string") : "a string";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

// ---------------------------------------------------------------------------
// Schema helpers


function expectedOf(schema: unknown): string {
  const { message, expects } = schema as { message?: unknown; expects?: unknown };
  return typeof message === "string" ? message : String(expects);
}

/**
 * A loose object (unknown keys pass through) that rejects arrays, which valibot's
 * object schemas would otherwise accept.
 */
function record<const E extends v.ObjectEntries>(entries: E, expected = "an object") {
  return v.pipe(
    v.custom<Record<string, unknown>>(isRecord, expected),
    v.looseObject(entries, (issue) => {
      // valibot raises a missing key on the object, not on the field: word it as the field's expectation.
      const last = issue.path?.[issue.path.length - 1];
      return last?.origin === "key" ? expectedOf(entries[last.key as keyof E]) : expected;
    }),
  );
}

const text = v.string("a string");
// Any JSON value, null and primitives included; a missing key is read as null.
const anyData = v.optional(v.unknown());

const PayloadSchema = record({ type: text, id: text, data: anyData });
const ClientMessageSchema = record({ payload: PayloadSchema });

const ScopeSchema = record({
  header: record({ scope: v.picklist(["client", "server"], '"client" or "server"') }),
});

const notBlank = (s: string) => s.trim() !== "";

const AuthSchema = record({
  header: record({
    authentication: record(
      {
        // Checked before trimming, so a problem describes what was sent.
        username: v.pipe(text, v.check(notBlank, "a non-blank string"), v.trim()),
        // Not trimmed: surrounding spaces may be part of a password; only a blank one is refused.
        password: v.pipe(text, v.check(notBlank, "a non-blank string")),
      },
      "an object {username, password}",
    ),
  }),
});

const ServerMessageSchema = record({
  payload: record({ type: text, id: v.optional(text), data: anyData }),
});

const HandlerStatusSchema = record({
  header: record({
    // Numbers are accepted (0 reads as "0"): handlers in loosely typed languages emit them,
    // and the meaning is unambiguous. docs/HANDLERS.md says what succeeds.
    status: v.custom<string | number>(
      (s) => typeof s === "string" || (typeof s === "number" && Number.isFinite(s)),
      'a string ("0" for success) or a number',
    ),
  }),
});

const HandlerCommandSchema = record({
  header: record({
    command: record({ type: text, data: anyData }, 'a command {"type", "data"} or a command name'),
  }),
});

const BuiltinSchema = record({ command: record({ type: text, data: anyData, args: anyData }) });

const MESSAGE: Where = { root: "message" };

// ---------------------------------------------------------------------------
// Parsers

/**
 * The first frame of a connection. Problems: bad_scope (scope missing or unknown),
 * auth_failed (client credentials missing or blank; the password is never quoted),
 * malformed_message (anything else).
 */
export function parseFirstFrame(value: unknown): { ok: true; frame: FirstFrame } | { ok: false; problem: Problem } {
  const scoped = v.safeParse(ScopeSchema, value);
  if (!scoped.success) {
    // Only a value that is not even an object is malformed; every other miss is about the scope.
    const code = scoped.issues[0].path === undefined ? ErrorCodes.malformed : ErrorCodes.badScope;
    return { ok: false, problem: problemFrom(code, scoped.issues, MESSAGE) };
  }
  const header = scoped.output.header;

  if (header.scope === "server") {
    const parsed = v.safeParse(ServerMessageSchema, value);
    if (!parsed.success) return { ok: false, problem: problemFrom(ErrorCodes.malformed, parsed.issues, MESSAGE) };
    const { type, id, data } = parsed.output.payload;
    const payload = id === undefined ? { type, data: data ?? null } : { type, id, data: data ?? null };
    const frame: FirstFrame = { scope: "server", payload };
    if (Object.hasOwn(header, "authentication")) frame.authentication = header["authentication"];
    return { ok: true, frame };
  }

  const auth = v.safeParse(AuthSchema, value);
  if (!auth.success) {
    const where = { ...MESSAGE, secret: "header.authentication" };
    return { ok: false, problem: problemFrom(ErrorCodes.authFailed, auth.issues, where) };
  }
  const { username, password } = auth.output.header.authentication;
  const credentials = { username, password };
  // Anything but an explicit `true` is the original delivery: an unknown header field never refuses a login.
  const delivery = (value as { header: Record<string, unknown> }).header["delivery"];
  const ack = isRecord(delivery) && delivery["ack"] === true;

  // The original daemon never read the first frame's payload, and original
  // clients log in with payloads of any shape (no id, null, a primitive):
  // the login stands on the header alone. A well-formed payload is a message
  // like any other; anything else is set aside, never a reason to refuse.
  const raw = (value as Record<string, unknown>)["payload"];
  if (raw === undefined || raw === null) return { ok: true, frame: { scope: "client", credentials, ack } };
  const payload = parseClientPayload(value);
  if (!payload.ok) return { ok: true, frame: { scope: "client", credentials, ack, ignored: payload.problem.message } };
  return { ok: true, frame: { scope: "client", credentials, ack, payload: payload.payload } };
}

/** A client's message after the first: the header is ignored, the payload must be complete. */
export function parseClientPayload(value: unknown): { ok: true; payload: ClientPayload } | { ok: false; problem: Problem } {
  // Hot path: a well-formed message is checked by hand; only a malformed one
  // goes through the schema, for its precise problem. (Equivalence: messages.test.ts.)
  const payload = clientPayloadOf(value);
  return payload !== undefined ? { ok: true, payload } : _parseClientPayloadBySchema(value);
}

/** The hand check of {@link parseClientPayload}: the payload of a well-formed message, else undefined. */
export function clientPayloadOf(value: unknown): ClientPayload | undefined {
  const p = isRecord(value) ? value["payload"] : undefined;
  if (isRecord(p) && typeof p["type"] === "string" && typeof p["id"] === "string") {
    return { type: p["type"], id: p["id"], data: p["data"] ?? null };
  }
  return undefined;
}

/** The schema path of {@link parseClientPayload}; exported for the equivalence test only. */
export function _parseClientPayloadBySchema(value: unknown): { ok: true; payload: ClientPayload } | { ok: false; problem: Problem } {
  const parsed = v.safeParse(ClientMessageSchema, value);
  if (!parsed.success) return { ok: false, problem: problemFrom(ErrorCodes.malformed, parsed.issues, MESSAGE) };
  const { type, id, data } = parsed.output.payload;
  return { ok: true, payload: { type, id, data: data ?? null } };
}

/**
 * A message handler's response, in either shape of PROTOCOL.md §4:
 * `header.command: {type, data}` with top-level `data`, or the early spec's
 * `header.command: "<name>"` + `header.commandData` with `payload.data`.
 */
export function parseHandlerResponse(value: unknown): { ok: true; response: HandlerResponse } | { ok: false; problem: Problem } {
  // Hot path, as in parseClientPayload: the usual good answer by hand, anything else by the schema.
  const response = handlerResponseOf(value);
  return response !== undefined ? { ok: true, response } : _parseHandlerResponseBySchema(value);
}

/** The hand check of {@link parseHandlerResponse}: the usual good answer's shape, else undefined. */
export function handlerResponseOf(value: unknown): HandlerResponse | undefined {
  const header = isRecord(value) ? value["header"] : undefined;
  const command = isRecord(header) ? header["command"] : undefined;
  if (isRecord(header) && typeof header["status"] === "string" && isRecord(command) && typeof command["type"] === "string") {
    return {
      status: header["status"],
      data: responseData(value as Record<string, unknown>),
      command: { type: command["type"], data: command["data"] ?? null },
    };
  }
  return undefined;
}

/** The schema path of {@link parseHandlerResponse}; exported for the equivalence test only. */
export function _parseHandlerResponseBySchema(value: unknown): { ok: true; response: HandlerResponse } | { ok: false; problem: Problem } {
  const where: Where = { root: "response" };
  const parsed = v.safeParse(HandlerStatusSchema, value);
  if (!parsed.success) return { ok: false, problem: problemFrom(ErrorCodes.handlerFailed, parsed.issues, where) };
  const header = parsed.output.header;
  const status = String(header.status);
  const response: HandlerResponse = { status, data: responseData(value as Record<string, unknown>) };

  if (typeof header["command"] === "string") {
    response.command = { type: header["command"], data: header["commandData"] ?? null };
    return { ok: true, response };
  }
  const command = v.safeParse(HandlerCommandSchema, value);
  if (command.success) {
    const { type, data } = command.output.header.command;
    response.command = { type, data: data ?? null };
  } else if (status === "0") {
    return { ok: false, problem: problemFrom(ErrorCodes.handlerFailed, command.issues, where) };
  }
  // A failing handler's command is never carried out, so a broken one is not worth reporting.
  return { ok: true, response };
}

function responseData(response: Record<string, unknown>): unknown {
  if (Object.hasOwn(response, "data")) return response["data"] ?? null;
  const payload = response["payload"];
  if (isRecord(payload) && Object.hasOwn(payload, "data")) return payload["data"] ?? null;
  return null;
}

/** The data of a "builtin" message: `{"command": {"type": "<name>", "data": ...}}`. */
export function parseBuiltinCommand(
  data: unknown,
): { ok: true; type: string; data: unknown; args: unknown } | { ok: false; problem: Problem } {
  const parsed = v.safeParse(BuiltinSchema, data);
  if (!parsed.success) {
    const where = { root: "payload.data", prefix: "payload.data" };
    return { ok: false, problem: problemFrom(ErrorCodes.malformed, parsed.issues, where) };
  }
  const { type, data: argument, args } = parsed.output.command;
  return { ok: true, type, data: argument ?? null, args: args ?? null };
}
