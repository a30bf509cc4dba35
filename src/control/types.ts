/**
 * What the control API sees of the gateway (the server's monitor) and what
 * it may ask of it (actions). The Hono app depends on these shapes only.
 * @module
 */

export type {
  ClientInfo,
  ClusterInfo,
  GatewayMonitor as ControlView,
  InboxesInfo,
  ListenerInfo,
  MetricsSnapshot,
  PeerInfo,
  PeersInfo,
  RatesInfo,
  Readiness,
  SessionInfo,
} from "../server/monitor.ts";

export type ReloadResult = { ok: true; changes: string[]; warnings: string[] } | { ok: false; errors: string[]; warnings: string[] };

export { CONTROL_MESSAGE_TYPE } from "../server/gateway.ts";

export interface ControlActions {
  reload(): Promise<ReloadResult>;
  /** Every session of the user, on every node of a cluster. */
  disconnect(username: string): number | Promise<number>;
  /** Delivers as a handler's sendClients would; `undelivered`: users it neither wrote to nor stored for. */
  inject(type: string, users: string[], data: unknown): Promise<{ delivered: string[]; undelivered: string[] }>;
  shutdown(): void;
  /** Removes every message waiting for `username`; returns how many. */
  clearInbox(username: string): Promise<number>;
}
