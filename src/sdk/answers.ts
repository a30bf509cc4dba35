/**
 * A handler's answers (PROTOCOL.md §4) as the SDK builds them: the command
 * that says where the gateway sends the result, or a failure.
 * @module
 */
import { isRecord } from "../guard.ts";
import type { ErrorInfo } from "../protocol/reports.ts";

/**
 * The command of a successful answer: where the gateway sends the answer's data.
 *
 * @example
 * ```ts
 * const command: HandlerCommand = sendHandler("chat", null).header.command!; // { type: "sendHandler", data: "chat" }
 * ```
 */
export type HandlerCommand =
  | { type: "sendClients"; data: string[] }
  | { type: "sendHandler"; data: string }
  | { type: "sendServers"; data: string[] };

/**
 * A handler's answer, exactly as it goes on the wire. Build it with
 * {@link sendClients}, {@link sendHandler}, {@link sendServers} or {@link fail}.
 *
 * @example
 * ```ts
 * const answer: HandlerAnswer = sendClients(["bob"], "hi");
 * // { header: { status: "0", command: { type: "sendClients", data: ["bob"] } }, data: "hi" }
 * ```
 */
export interface HandlerAnswer {
  header: {
    /** "0" is success; anything else makes the gateway report "bad" to the originator. */
    status: string;
    command?: HandlerCommand;
    /** Copied by the gateway into the originator's "bad" status report. */
    error?: ErrorInfo;
  };
  data: unknown;
}

/**
 * Delivers `data` to every connected session of `users`.
 *
 * @param users one username or a list of them
 * @param data any JSON value; delivered as the `payload.data` of a `receivedMessage`
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data, meta }) => sendClients(["bob", "carol"], { from: meta?.from, data });
 * ```
 */
export function sendClients(users: string | string[], data: unknown): HandlerAnswer {
  return ok({ type: "sendClients", data: typeof users === "string" ? [users] : [...users] }, data);
}

/**
 * Passes `data` on to the handler of another type, whose answer the gateway
 * then carries out.
 *
 * @param type the handler type (message type) to pass to
 * @param data the request that handler receives
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) => sendHandler("chat", data);
 * ```
 */
export function sendHandler(type: string, data: unknown): HandlerAnswer {
  return ok({ type: "sendHandler", data: type }, data);
}

/**
 * Sends `data` to other Bester servers, where the handler of the same type
 * receives it.
 *
 * @param servers `"host:port"` or `"[ipv6]:port"`, one or a list
 * @param data the request the remote handler receives
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) => sendServers(["chat.example.org:2220"], data);
 * ```
 */
export function sendServers(servers: string | string[], data: unknown): HandlerAnswer {
  return ok({ type: "sendServers", data: typeof servers === "string" ? [servers] : [...servers] }, data);
}

/**
 * Refuses a request: the originator gets a "bad" status report carrying
 * `{code, message}`.
 *
 * @param message what went wrong, for the person who sent the message
 * @param code a stable, machine-readable code (default `"handler_failed"`)
 * @returns the answer to return from `handle`
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data }) =>
 *   typeof data === "string" ? sendClients(["bob"], data) : fail("data: expected a string", "bad_request");
 * ```
 */
export function fail(message: string, code = "handler_failed"): HandlerAnswer {
  return { header: { status: "1", error: { code, message } }, data: null };
}

function ok(command: HandlerCommand, data: unknown): HandlerAnswer {
  // undefined would vanish from the JSON; say null explicitly.
  return { header: { status: "0", command }, data: data === undefined ? null : data };
}

/** Whether `value` has the shape of an answer (a header with a string status). */
export function isAnswer(value: unknown): value is HandlerAnswer {
  return isRecord(value) && isRecord(value["header"]) && typeof value["header"]["status"] === "string";
}
