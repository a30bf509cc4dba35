/**
 * The `open` store: any non-empty username and password gets in, as the
 * original daemon effectively behaved. The config loader allows it only while
 * every listener is on loopback (or the operator says otherwise).
 * @module
 */
import { type AccountStore, checkUsername, type VerifyResult } from "./store.ts";

export const OPEN_STORE_KEEPS_NO_ACCOUNTS =
  'the open account store keeps no accounts; set database.type to "sqlite" or "redis"';

export class OpenAccountStore implements AccountStore {
  readonly kind = "open";

  async verify(username: string, password: string): Promise<VerifyResult> {
    const checked = checkUsername(username);
    if (!checked.ok) return { ok: false, reason: "unknown_user", message: checked.problem };
    if (password === "") return { ok: false, reason: "bad_password", message: "password is empty" };
    return { ok: true, username: checked.username };
  }

  async setPassword(): Promise<void> {
    throw new Error(OPEN_STORE_KEEPS_NO_ACCOUNTS);
  }

  async remove(): Promise<boolean> {
    throw new Error(OPEN_STORE_KEEPS_NO_ACCOUNTS);
  }

  async list(): Promise<string[]> {
    throw new Error(OPEN_STORE_KEEPS_NO_ACCOUNTS);
  }

  /** Keeps no accounts: who is known is the delivery store's to say (whoever has logged in). */
  async has(): Promise<undefined> {
    return undefined;
  }

  health() {
    return { ok: true, detail: "open: every non-empty username and password is accepted" };
  }

  async close(): Promise<void> {}
}
