/**
 * The public SDK of bester: {@link serveHandler} / {@link runHandlerMain} to
 * write message handlers, {@link connectClient} to write clients. Both halves
 * are also importable alone (`bester/sdk/handler`, `bester/sdk/client`).
 *
 * @example
 * ```ts
 * import { connectClient, runHandlerMain, sendClients } from "bester/sdk";
 * ```
 *
 * @module
 */
export {
  CLOSE_GRACE_MS,
  DEFAULT_HANDLER_MAX_FRAME_BYTES,
  fail,
  HandlerStartError,
  runHandlerMain,
  sendClients,
  sendHandler,
  sendServers,
  serveHandler,
  type EnvelopeMode,
  type HandleFunction,
  type HandlerAnswer,
  type HandlerCommand,
  type HandlerMeta,
  type HandlerRequest,
  type RunHandlerMainOptions,
  type RunningHandler,
  type ServeHandlerOptions,
} from "./handler.ts";
export {
  BesterClientError,
  connectClient,
  DEFAULT_CONNECT_TIMEOUT_MS,
  formatTarget,
  parseTarget,
  type BesterClient,
  type ClientClosed,
  type ClientTarget,
  type ConnectClientOptions,
  type ReceivedMessage,
  type StatusReport,
} from "./client.ts";
