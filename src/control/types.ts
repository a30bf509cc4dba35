/**
 * What the control API sees of the gateway (a read-only view) and what it
 * may ask of it (actions). The Hono app depends on these shapes only.
 * @module
 */
import type { HandlerStatus } from "../handlers/host.ts";
import type { Histogram } from "../server/stats.ts";
import type { RateCounter, RatePoint } from "./rate-history.ts";

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

/** A configured federation peer as the API shows it: never its secret. */
export interface PeerInfo {
  name: string;
  /** Where it is dialled; null for a peer that only dials us. */
  address: string | null;
  /** How it proves itself: the shared secret, or none (an original Bester server). */
  auth: "secret" | "original";
  tls: boolean;
  /** Server-scope connections from it open now. */
  connected: number;
}

export interface PeersInfo {
  /** This server's federation.name, if set. */
  name: string | null;
  peers: PeerInfo[];
  /** IP addresses original servers may deliver from. */
  allowOriginal: string[];
}

/** GET /v1/rates: per-second rates over the last minutes, oldest first. */
export interface RatesInfo {
  intervalSeconds: number;
  windowSeconds: number;
  counters: readonly RateCounter[];
  points: RatePoint[];
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
  handlerFailures: Map<string, number>;
  handlerLatencyMs: Map<string, Histogram>;
  latencyBucketsMs: readonly number[];
  handlers: HandlerStatus[];
}

export interface ControlView {
  listeners(): ListenerInfo[];
  clients(): ClientInfo[];
  handlers(): HandlerStatus[];
  peers(): PeersInfo;
  rates(): RatesInfo;
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
