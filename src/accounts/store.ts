/**
 * The account store interface: where client credentials are checked and kept.
 * One implementation per `database.type` (open, sqlite, redis); the gateway
 * and `bester passwd` see only this.
 * @module
 */

/** Why a login failed; the reasons stay distinct so the gateway can log them apart. */
export type VerifyFailure = "unknown_user" | "bad_password" | "unavailable";

export type VerifyResult =
  | { ok: true; username: string }
  /** `message` is for logs and never contains the password. */
  | { ok: false; reason: VerifyFailure; message: string };

export interface AccountStore {
  readonly kind: "open" | "sqlite" | "redis";
  /** Checks a login. Never throws: a store that cannot answer says `unavailable`. */
  verify(username: string, password: string): Promise<VerifyResult>;
  /** Creates the user or replaces their password. */
  setPassword(username: string, password: string): Promise<void>;
  /** true if the user existed. */
  remove(username: string): Promise<boolean>;
  /** Every username, sorted. */
  list(): Promise<string[]>;
  /**
   * Whether an account of this name exists: a message for a known user who is
   * not connected waits in the inbox (PROTOCOL.md §9). Undefined when the
   * store keeps no accounts (`open`): the delivery store decides then.
   * Rejects when the store cannot answer.
   */
  has(username: string): Promise<boolean | undefined>;
  /** Whether the store can answer now, and why not. */
  health(): { ok: boolean; detail: string };
  close(): Promise<void>;
}

/** Longest username accepted; a generous bound that keeps keys and log lines sane. */
export const MAX_USERNAME_CHARS = 256;

// C0, DEL and C1: they corrupt logs and terminals and are never part of a name.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** The username as stored (trimmed, like the protocol trims it at login), or why it is not acceptable. */
export function checkUsername(raw: string): { ok: true; username: string } | { ok: false; problem: string } {
  const username = raw.trim();
  if (username === "") return { ok: false, problem: "username is empty" };
  if ([...username].length > MAX_USERNAME_CHARS) {
    return { ok: false, problem: `username is longer than ${MAX_USERNAME_CHARS} characters` };
  }
  if (CONTROL_CHARS.test(username)) return { ok: false, problem: "username contains a control character" };
  return { ok: true, username };
}

/** For setPassword: the stored username, or a clear Error. */
export function requireValidAccount(rawUsername: string, password: string): string {
  const checked = checkUsername(rawUsername);
  if (!checked.ok) throw new Error(`invalid username ${JSON.stringify(rawUsername)}: ${checked.problem}`);
  if (password === "") throw new Error("the password must not be empty");
  return checked.username;
}

/** The error text every store uses when it cannot answer. */
export function unavailableMessage(detail: string): string {
  return `account store unavailable: ${detail}`;
}
