/**
 * The public SDK of bester: {@link serveHandler} / {@link runHandlerMain} to
 * write message handlers, {@link connectInformer} for a handler to ask its
 * gateway who is connected, {@link connectClient} to write clients. Each part
 * is also importable alone (`bester/sdk/handler`, `bester/sdk/informer`,
 * `bester/sdk/client`).
 *
 * @example
 * ```ts
 * import { connectClient, connectInformer, runHandlerMain, sendClients } from "bester/sdk";
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
export {
  connectInformer,
  DEFAULT_INFORMER_TIMEOUT_MS,
  InformerError,
  informerSocketPath,
  type ConnectInformerOptions,
  type InformerClient,
  type InformerListener,
  type ServerInfo,
} from "./informer.ts";
