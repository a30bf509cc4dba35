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
