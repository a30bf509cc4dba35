/**
 * Where messages wait for their users (PROTOCOL.md §9): each user's delivery
 * stream, its sequence numbers, what the user has acknowledged, and the
 * inbox of messages not yet done. One implementation per engine (SQLite for
 * one gateway, Redis for one or a cluster); the gateway sees only this.
 *
 * Calls made in one event-loop turn are carried out together (one SQLite
 * transaction, one Redis pipeline) and answered in the order they were made.
 * @module
 */

/** One message of a user's stream, as stored. */
export interface StoredMessage {
  seq: number;
  /** The type of the handler (or control API call) that produced it. */
  type: string;
  /** Its data as JSON text; undefined for data JSON cannot carry (an answer without data). */
  data: string | undefined;
  /** When it was stored, ms since the epoch. */
  storedAt: number;
}

/** Why a store call did not do what was asked. */
export interface StoreFailure {
  ok: false;
  /** `inbox_full`: past the count or byte limit; `bad_ack`: a seq never sent; `store_unavailable`: the engine did not answer. */
  code: "inbox_full" | "bad_ack" | "store_unavailable";
  message: string;
}

/** A user's inbox, for the control API. */
export interface InboxInfo {
  username: string;
  /** Messages stored, and their bytes (the data's JSON text). */
  depth: number;
  bytes: number;
  /** When the oldest stored message was stored (ms since the epoch); undefined when empty. */
  oldest: number | undefined;
  /** The last seq given, and the last one acknowledged. */
  lastSeq: number;
  acked: number;
}

/** Limits of one inbox (`delivery.inbox` in the config). */
export interface InboxLimits {
  maxMessages: number;
  maxBytes: number;
  maxAgeSeconds: number;
}

export interface DeliveryStore {
  readonly kind: "sqlite" | "redis";
  /**
   * Enters a message into `user`'s stream and gives it the next seq. With
   * `keep`, it is stored until it is done (acknowledged, written to a
   * session that does not acknowledge, or expired), within the inbox
   * limits (else `inbox_full`); without, only the seq is taken (it has
   * already been delivered for good).
   */
  append(user: string, type: string, data: string | undefined, keep: boolean): Promise<{ ok: true; seq: number } | StoreFailure>;
  /** Stored messages of `user` with a seq above `after`, oldest first, at most `limit`. */
  read(user: string, after: number, limit: number): Promise<StoredMessage[]>;
  /**
   * Cumulative acknowledgement: every stored message of `user` up to `seq`
   * is done. `bad_ack` for a seq above the last one given.
   */
  ack(user: string, seq: number): Promise<{ ok: true } | StoreFailure>;
  /** Messages up to `seq` were written to a session that does not acknowledge: done. */
  drop(user: string, seq: number): Promise<void>;
  /**
   * A client of `user` logged in: remembers the user (see `knows`), and
   * says what it has acknowledged and whether its stream is new (never
   * announced to an acknowledging session, as after the store was lost).
   */
  login(user: string, ack: boolean): Promise<{ acked: number; reset: boolean }>;
  /** Whether `user` has ever logged in or been sent a message (for the `open` account store). */
  knows(user: string): Promise<boolean>;
  inbox(user: string): Promise<InboxInfo | undefined>;
  /** Removes every stored message of `user`; returns how many. */
  clear(user: string): Promise<number>;
  /** Removes messages stored before `before` (ms since the epoch); returns how many, per user. */
  expire(before: number): Promise<Array<{ user: string; count: number }>>;
  /** Messages stored, all users together. */
  depth(): Promise<number>;
  /** The users with the most messages waiting, most first, at most `limit`. */
  largest(limit: number): Promise<InboxInfo[]>;
  /** Whether the store answers now, and why not. */
  health(): { ok: boolean; detail: string };
  close(): Promise<void>;
}
