import type { CloseKind } from "../runtime/types.ts";

/**
 * Why a connection ended, for every kind of connection (client and server
 * sessions, handler links, federation deliveries, informer clients). Every
 * close records one, so logs and metrics say what happened without guessing.
 * Published in logs and metrics: never rename one.
 */
export const ClosedReason = {
  /** The peer closed the connection. */
  peerClosed: "peer_closed",
  /** The client asked with the `builtin` `close` command. */
  clientRequested: "client_requested",
  /** A frame could not be decoded (size, UTF-8, JSON). */
  frameError: "frame_error",
  /** A frame decoded but was not a valid message. */
  malformed: "malformed_message",
  /** The first frame named no known scope. */
  badScope: "bad_scope",
  /** The credentials of the first frame were refused. */
  authFailed: "auth_failed",
  /** No valid first frame arrived in time. */
  authTimeout: "auth_timeout",
  /** The gateway was at its connection limit. */
  tooManyConnections: "too_many_connections",
  /** The peer did not read fast enough and its outbound buffer passed the limit. */
  slowConsumer: "slow_consumer",
  /** A socket error (reset, broken pipe). */
  socketError: "socket_error",
  /** A server-scope connection finished its one message. */
  serverMessageDone: "server_message_done",
  /** An operator disconnected the client through the control API. */
  operator: "operator_disconnect",
  /** The gateway is shutting down. */
  shutdown: "server_shutdown",
  /** A connection made for one exchange (a per-message handler request, a federation delivery) finished it. */
  exchangeDone: "exchange_done",
  /** The peer did not answer within its deadline (a handler, a peer server). */
  timeout: "timeout",
  /** The peer sent a frame that answers nothing asked, or not in the shape asked for. */
  unexpectedFrame: "unexpected_frame",
  /** Its owner stopped using it: a handler removed or reconfigured, a kept link reset. */
  released: "released",
} as const;

export type ClosedReason = (typeof ClosedReason)[keyof typeof ClosedReason];

/** What the frame decoder's size error is called in a close's detail (`code: message`). */
const TOO_LARGE_DETAIL = "frame_too_large:";

/**
 * What the peer is told of a close, where its transport can say (a
 * WebSocket's close code, PROTOCOL.md §10): a fatal error is a broken rule
 * ("policy", 1008), a frame over the size limit "too_big" (1009), the
 * server stopping "going_away" (1001), anything else "normal" (1000).
 */
export function closeKindOf(reason: ClosedReason | undefined, detail: string | undefined): CloseKind {
  switch (reason) {
    case ClosedReason.frameError:
      return detail?.startsWith(TOO_LARGE_DETAIL) ? "too_big" : "policy";
    case ClosedReason.malformed:
    case ClosedReason.badScope:
    case ClosedReason.authFailed:
    case ClosedReason.authTimeout:
    case ClosedReason.tooManyConnections:
    case ClosedReason.slowConsumer:
    case ClosedReason.operator:
    case ClosedReason.timeout:
    case ClosedReason.unexpectedFrame:
      return "policy";
    case ClosedReason.shutdown:
      return "going_away";
    default:
      return "normal";
  }
}
