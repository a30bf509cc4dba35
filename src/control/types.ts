/**
 * What the control API sees of the gateway (a read-only view) and what it
 * may ask of it (actions). The Hono app depends on these shapes only.
 * @module
 */
import type { HandlerStatus } from "../handlers/host.ts";
import type { Histogram } from "../server/stats.ts";

export interface ListenerInfo {
  kind: "tcp4" | "tcp6" | "unix";
  address: string;
  /** Speaks TLS (network.<kind>.tls). */
  tls: boolean;
}

export interface SessionInfo {
  connection: number;
  listener: string;
  remote: string;
  connectedAt: string;
  messagesIn: number;
  inFlight: number;
  pendingBytes: number;
}

export interface ClientInfo {
  username: string;
  sessions: SessionInfo[];
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/** Everything /metrics renders, read at scrape time. */
export interface MetricsSnapshot {
  version: string;
  runtime: string;
  uptimeSeconds: number;
  /** Open connections by scope ("pending" before the first frame) and listener. */
  connections: Array<{ scope: string; listener: string; count: number }>;
  connectionsOpened: number;
  closed: Map<string, number>;
  messagesIn: Map<string, number>;
  messagesDelivered: Map<string, number>;
  reports: Map<string, number>;
  authFailures: number;
  /** Logins refused unchecked while their address or username was held back, by "source" / "username". */
  loginsHeldBack: Map<string, number>;
  /** Holds begun, by "source" / "username". */
  loginHolds: Map<string, number>;
  /** Addresses and usernames held back now. */
  loginsHeldNow: { source: number; username: number };
  /** Password checks running and waiting for their turn. */
  loginChecks: { running: number; waiting: number };
  handlerFailures: Map<string, number>;
  handlerLatencyMs: Map<string, Histogram>;
  latencyBucketsMs: readonly number[];
  handlers: HandlerStatus[];
}

export interface ControlView {
  listeners(): ListenerInfo[];
  clients(): ClientInfo[];
  handlers(): HandlerStatus[];
  readiness(): Readiness;
  metrics(): MetricsSnapshot;
  health(): { status: "ok"; version: string; runtime: string; uptimeSeconds: number };
}

export type ReloadResult = { ok: true; changes: string[]; warnings: string[] } | { ok: false; errors: string[]; warnings: string[] };

/** The type of a message POST /v1/messages delivers when the request names none. */
export const CONTROL_MESSAGE_TYPE = "control";

export interface ControlActions {
  reload(): Promise<ReloadResult>;
  disconnect(username: string): number;
  inject(type: string, users: string[], data: unknown): { delivered: string[]; undelivered: string[] };
  shutdown(): void;
}
