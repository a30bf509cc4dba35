/**
 * Messages the server itself sends to a client: status reports (PROTOCOL.md §5),
 * fatal errors (§6), the dummy reply (§3) and delivered messages (§4).
 *
 * @module
 */

export type Status = "good" | "bad";

export interface ErrorInfo {
  code: string;
  message: string;
}

/** Stable error codes used on the wire. Clients may match on them, so never rename one. */
export const ErrorCodes = {
  /** A frame header declared more bytes than the configured maximum frame size. */
  frameTooLarge: "frame_too_large",
  /** A frame body was not valid UTF-8. */
  invalidUtf8: "invalid_utf8",
  /** A frame body was not valid JSON (an empty frame included). */
  invalidJson: "invalid_json",
  /** A frame (a client's, a handler's answer, a peer's, an informer request) nests arrays and objects deeper than limits.maxJsonDepth. */
  tooDeep: "too_deep",
  /** Valid JSON, but not the shape the protocol requires (e.g. payload.id missing). */
  malformed: "malformed_message",
  /** The first frame's header.scope was missing or neither "client" nor "server". */
  badScope: "bad_scope",
  /** Credentials missing, empty or wrong, or a server peer that is not allowed. */
  authFailed: "auth_failed",
  /** The first frame did not arrive within the authentication timeout. */
  authTimeout: "auth_timeout",
  /** No handler is configured for the message's type. */
  unknownType: "unknown_type",
  /** A "builtin" message named a command the server does not know. */
  unknownBuiltin: "unknown_builtin",
  /** The server or this user is at its connection limit. */
  tooManyConnections: "too_many_connections",
  /** The server is stopping (or in lame-duck mode) and takes no new work. */
  shuttingDown: "shutting_down",
  /** The handler was unreachable, answered with a non-"0" status, or sent a malformed response. */
  handlerFailed: "handler_failed",
  /** The handler did not answer within the handler timeout. */
  handlerTimeout: "handler_timeout",
  /** The handler's socket could not be reached (not started yet, restarting, or gone). */
  handlerUnavailable: "handler_unavailable",
  /** The handler answered with a command the server cannot carry out (unknown type, bad data). */
  badCommand: "bad_command",
  /** A delivered message could not be written to a recipient's session (closing, or cut as a slow consumer). */
  deliveryFailed: "delivery_failed",
  /** A sendHandler chain passed limits.maxHandlerHops; almost surely a cycle. */
  hopLimit: "hop_limit",
  /** The account store could not answer (e.g. Redis unreachable); the login may be retried. */
  storeUnavailable: "store_unavailable",
  /** Logins from this address (or for this username) are held back after repeated failures; the message says for how long. */
  loginThrottled: "login_throttled",
  /** The request is valid but this server does not support it (e.g. a disabled command). */
  notImplemented: "not_implemented",
  /** The client read too slowly and its pending output exceeded the limit. */
  slowConsumer: "slow_consumer",
  /** An operator disconnected this client (control API). */
  disconnected: "disconnected",
  /** sendServers: at least one server did not accept the message; `header.failedServers` says which and why. */
  peerFailed: "peer_failed",
  /** sendServers named a server that is not a configured peer (federation.peers). */
  unknownPeer: "unknown_peer",
  /** A peer server could not be reached (refused, unresolvable, or no connection within the connect timeout). */
  peerUnreachable: "peer_unreachable",
  /** A peer server took the message but sent no status report within the reply timeout. */
  peerTimeout: "peer_timeout",
  /** An informer request named a command the server does not know. */
  unknownCommand: "unknown_command",
  /** A recipient's inbox is at its message or byte limit (PROTOCOL.md §9); the message names the user. */
  inboxFull: "inbox_full",
  /** An acknowledgement named a seq the user was never sent, or came from a session that does not acknowledge. */
  badAck: "bad_ack",
  /** A bug or unexpected failure inside the server. */
  internal: "internal_error",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface StatusReportMessage {
  header: { status: Status; messageType: "statusReport"; error?: ErrorInfo };
  payload: { id: string };
}

export interface FatalMessage {
  header: { status: "bad"; messageType: "fatal"; error: ErrorInfo };
  payload: { id: string | null };
}

export interface DummyReplyMessage {
  header: { status: "0" };
  payload: { data: null; type: "dummy"; id: string };
}

export interface ReceivedMessage {
  header: { messageType: "receivedMessage" };
  payload: { data: unknown; type: string };
}

export function statusReport(id: string, status: Status, error?: ErrorInfo): StatusReportMessage {
  // The error key is left out entirely when absent: original clients compare headers loosely,
  // but an explicit `"error": null` is noise on every good report.
  const header: StatusReportMessage["header"] = { status, messageType: "statusReport" };
  if (error !== undefined) header.error = { code: error.code, message: error.message };
  return { header, payload: { id } };
}

// ErrorInfo is copied field by field so that an Error passed as one (FrameError, say) still
// serialises its message, which is not an enumerable property of Errors.
export function fatalMessage(error: ErrorInfo, id: string | null): FatalMessage {
  return {
    header: { status: "bad", messageType: "fatal", error: { code: error.code, message: error.message } },
    payload: { id },
  };
}

export function dummyReply(id: string): DummyReplyMessage {
  return { header: { status: "0" }, payload: { data: null, type: "dummy", id } };
}

export function receivedMessage(type: string, data: unknown): ReceivedMessage {
  return { header: { messageType: "receivedMessage" }, payload: { data, type } };
}

// Serialised forms of frames built from text, cheaper than serialising an
// object per report. Each equals JSON.stringify of its object form (unit-tested).
/**
 * `JSON.stringify(statusReport(id, "good"))` is GOOD_REPORT_HEAD +
 * JSON.stringify(id) + GOOD_REPORT_TAIL: a session writes those three parts.
 */
export const GOOD_REPORT_HEAD = '{"header":{"status":"good","messageType":"statusReport"},"payload":{"id":';
export const GOOD_REPORT_TAIL = "}}";

/** A delivery is DELIVERY_HEAD + data's JSON + deliveryTail(type) (data defined). */
export const DELIVERY_HEAD = '{"header":{"messageType":"receivedMessage"},"payload":{"data":';

/** Handler types are few and fixed by the config: their tails are made once. */
const deliveryTails = new Map<string, string>();

export function deliveryTail(type: string): string {
  let tail = deliveryTails.get(type);
  if (tail === undefined) {
    tail = ',"type":' + JSON.stringify(type) + "}}";
    if (deliveryTails.size < 1024) deliveryTails.set(type, tail);
  }
  return tail;
}

/** The head of a delivery to an acknowledging session: DELIVERY_HEAD with `header.seq` (PROTOCOL.md §9). */
export function deliveryHeadWithSeq(seq: number): string {
  return '{"header":{"messageType":"receivedMessage","seq":' + seq + '},"payload":{"data":';
}

/**
 * The three parts of a `receivedMessage` frame (head, data, tail), with
 * `header.seq` when `seq` is given: each session's queue encodes them
 * without joining them. `dataJson` undefined leaves data out, as
 * JSON.stringify does.
 */
export function deliveryParts(type: string, dataJson: string | undefined, seq?: number): [head: string, body: string, tail: string] {
  if (dataJson === undefined) {
    const header = seq === undefined ? '{"messageType":"receivedMessage"}' : '{"messageType":"receivedMessage","seq":' + seq + "}";
    return ['{"header":' + header + ',"payload":{"type":' + JSON.stringify(type) + "}}", "", ""];
  }
  return [seq === undefined ? DELIVERY_HEAD : deliveryHeadWithSeq(seq), dataJson, deliveryTail(type)];
}

/**
 * `JSON.stringify(receivedMessage(type, data))`, given data's JSON text
 * (`dataJson`, undefined for undefined data).
 */
export function receivedMessageJson(type: string, dataJson: string | undefined): string {
  return deliveryParts(type, dataJson).join("");
}
