/**
 * The `redis` store, in the original Bester layout: one Redis hash per user
 * at `<prefix><username>`, whose `password` field holds the scrypt record.
 * Other fields of that hash are left alone.
 *
 * Redis going away must not take the gateway with it: commands are never
 * queued while disconnected (a login gets `unavailable` at once instead of
 * hanging), the client reconnects in the background with capped backoff, and
 * the loss and the recovery are each logged once (src/redis/connection.ts,
 * shared with the Redis delivery store).
 * @module
 */
import { ErrorReply } from "redis";
import type { Logger } from "../log/logger.ts";
import { describeError, type RedisClient, RedisConnection, type RedisConnectionOptions, RedisUnavailable } from "../redis/connection.ts";
import {
  checkStoredPassword,
  hashPassword,
  isLegacyPlaintext,
  legacyPlaintextMatches,
  verifyAgainstDummy,
} from "./hash.ts";
import { type AccountStore, checkUsername, requireValidAccount, unavailableMessage, type VerifyResult } from "./store.ts";

const PASSWORD_FIELD = "password";

/** list() may page through a large keyspace; it gets longer before Redis counts as hung. */
const LIST_TIMEOUT_MS = 30000;
/** Keys asked for per SCAN round trip in list(). */
const SCAN_COUNT = 500;

export interface RedisStoreOptions extends RedisConnectionOptions {
  prefix: string;
}

const ROLE = {
  name: "account store",
  unavailable: unavailableMessage,
  note: "logins get 'account store unavailable' until it is back; reconnecting in the background",
};

export async function openRedisStore(options: RedisStoreOptions): Promise<RedisAccountStore> {
  const store = new RedisAccountStore(options);
  await store.firstAttempt(options.initialConnectWaitMs ?? RedisConnection.INITIAL_CONNECT_WAIT_MS);
  return store;
}

export class RedisAccountStore implements AccountStore {
  readonly kind = "redis";
  readonly where: string;
  readonly prefix: string;
  #redis: RedisConnection<RedisClient>;
  #log: Logger | undefined;

  constructor(options: RedisStoreOptions) {
    this.where = options.host.includes(":") ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    this.prefix = options.prefix;
    this.#log = options.log?.with({ store: "redis", redis: this.where });
    this.#redis = RedisConnection.single(options, ROLE);
  }

  /** Resolves once the first connection attempt has succeeded or failed, or after `ms`. */
  firstAttempt(ms: number): Promise<void> {
    return this.#redis.firstAttempt(ms);
  }

  async verify(username: string, password: string): Promise<VerifyResult> {
    const checked = checkUsername(username);
    if (!checked.ok) return { ok: false, reason: "unknown_user", message: checked.problem };
    let stored: string | null;
    try {
      stored = await this.#run((c) => c.hGet(this.prefix + checked.username, PASSWORD_FIELD));
    } catch (err) {
      if (err instanceof RedisUnavailable) return { ok: false, reason: "unavailable", message: err.message };
      if (!isWrongType(err)) {
        return { ok: false, reason: "unavailable", message: unavailableMessage(`redis at ${this.where} answered: ${describeError(err)}`) };
      }
      stored = null; // the key holds something that is not a user hash
    }
    if (stored === null) {
      await verifyAgainstDummy(password);
      return { ok: false, reason: "unknown_user", message: `no account named ${JSON.stringify(checked.username)}` };
    }
    if (isLegacyPlaintext(stored)) return this.#verifyLegacy(checked.username, password, stored);
    return checkStoredPassword(checked.username, password, stored, this.#log);
  }

  /**
   * The original daemon kept passwords in plain text in this same field.
   * Such a user still gets in (compatibility), and that login replaces the
   * plain text with a scrypt record, so each legacy password lives on only
   * until its owner's next login.
   */
  async #verifyLegacy(username: string, password: string, stored: string): Promise<VerifyResult> {
    await verifyAgainstDummy(password); // the same cost as any other login
    if (!legacyPlaintextMatches(password, stored)) {
      return { ok: false, reason: "bad_password", message: `wrong password for ${JSON.stringify(username)} (legacy plain-text record)` };
    }
    try {
      const record = await hashPassword(password);
      await this.#run((c) => c.hSet(this.prefix + username, PASSWORD_FIELD, record));
      this.#log?.info("replaced a legacy plain-text password with a scrypt hash", { user: username });
    } catch (err) {
      this.#log?.warn("could not upgrade a legacy plain-text password; it stays as it was", { user: username, error: describeError(err) });
    }
    return { ok: true, username };
  }

  async setPassword(username: string, password: string): Promise<void> {
    const name = requireValidAccount(username, password);
    const record = await hashPassword(password);
    try {
      await this.#run((c) => c.hSet(this.prefix + name, PASSWORD_FIELD, record));
    } catch (err) {
      if (isWrongType(err)) {
        throw new Error(`redis key ${JSON.stringify(this.prefix + name)} exists and is not a hash; not overwriting it`);
      }
      throw err;
    }
  }

  async remove(username: string): Promise<boolean> {
    const checked = checkUsername(username);
    if (!checked.ok) return false;
    try {
      // HDEL, not DEL: fields other programs keep in the user's hash survive; Redis drops the key once it is empty.
      return (await this.#run((c) => c.hDel(this.prefix + checked.username, PASSWORD_FIELD))) > 0;
    } catch (err) {
      if (isWrongType(err)) return false;
      throw err;
    }
  }

  async has(username: string): Promise<boolean> {
    const checked = checkUsername(username);
    if (!checked.ok) return false;
    try {
      return Number(await this.#run((c) => c.hExists(this.prefix + checked.username, PASSWORD_FIELD))) === 1;
    } catch (err) {
      if (isWrongType(err)) return false;
      throw err;
    }
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    await this.#run(async (c) => {
      const match = `${escapeGlob(this.prefix)}*`;
      for await (const keys of c.scanIterator({ MATCH: match, TYPE: "hash", COUNT: SCAN_COUNT })) {
        if (keys.length === 0) continue;
        // A hash under the prefix is an account only if it has a password.
        const pipeline = c.multi();
        for (const key of keys) pipeline.hExists(key, PASSWORD_FIELD);
        const found = await pipeline.execAsPipeline(); // one round trip, no transaction needed
        keys.forEach((key, i) => {
          if (Number(found[i]) === 1) names.push(key.slice(this.prefix.length));
        });
      }
    }, LIST_TIMEOUT_MS);
    return [...new Set(names)].sort(); // SCAN may return a key twice
  }

  health() {
    return this.#redis.health();
  }

  async close(): Promise<void> {
    this.#redis.close();
  }

  #run<T>(fn: (client: RedisClient) => Promise<T>, timeoutMs?: number): Promise<T> {
    return this.#redis.run(fn, timeoutMs);
  }
}

function isWrongType(err: unknown): boolean {
  return err instanceof ErrorReply && err.message.startsWith("WRONGTYPE");
}

/** The prefix as a literal inside a SCAN MATCH pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, "\\$&");
}
