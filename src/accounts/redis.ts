/**
 * The `redis` store, in the original Bester layout: one Redis hash per user
 * at `<prefix><username>`, whose `password` field holds the scrypt record.
 * Other fields of that hash are left alone.
 *
 * Redis going away must not take the gateway with it: commands are never
 * queued while disconnected (a login gets `unavailable` at once instead of
 * hanging), the client reconnects in the background with capped backoff, and
 * the loss and the recovery are each logged once.
 * @module
 */
import { createClient, ErrorReply } from "redis";
import type { Logger } from "../log/logger.ts";
import {
  checkStoredPassword,
  hashPassword,
  isLegacyPlaintext,
  legacyPlaintextMatches,
  verifyAgainstDummy,
} from "./hash.ts";
import { type AccountStore, checkUsername, requireValidAccount, unavailableMessage, type VerifyResult } from "./store.ts";

const PASSWORD_FIELD = "password";

/** How long opening the store waits for the first connection attempt to succeed or fail (a dropped SYN gives neither). */
const INITIAL_CONNECT_WAIT_MS = 1500;
/** A login waits at most this long for Redis; a healthy Redis answers in well under a millisecond. */
const COMMAND_TIMEOUT_MS = 1000;
/** list() may page through a large keyspace; it gets longer before Redis counts as hung. */
const LIST_TIMEOUT_MS = 30000;
/** While idle, a PING this often keeps health() honest about a Redis that hangs without closing the connection. */
const HEARTBEAT_MS = 5000;
/** A TCP connect that gets no answer (a dropped SYN) is abandoned after this. */
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect delays double from the first to the cap, so a restarted Redis is found within the cap. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;
/** Keys asked for per SCAN round trip in list(). */
const SCAN_COUNT = 500;

export interface RedisStoreOptions {
  host: string;
  port: number;
  prefix: string;
  /** ACL user (Redis 6+); absent: the default user. */
  username?: string;
  /** AUTH password; absent: no AUTH. */
  password?: string;
  /** Connect with TLS; `ca` (PEM) replaces the system's CAs as the ones trusted. */
  tls?: { ca?: string };
  log?: Logger;
  /** Overrides for tests and for the CLI; the defaults suit the gateway. */
  initialConnectWaitMs?: number;
  maxRetryMs?: number;
  commandTimeoutMs?: number;
}

/** A store operation that could not reach Redis; its message is the one `verify` reports. */
class RedisUnavailable extends Error {
  override name = "RedisUnavailable";
}

type State = "connecting" | "up" | "down" | "closed";

function newClient(options: RedisStoreOptions, commandTimeoutMs: number) {
  const maxRetryMs = options.maxRetryMs ?? MAX_RETRY_MS;
  const common = {
    host: options.host,
    port: options.port,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Never gives up: the gateway outlives any Redis outage (a refused password included: it may be fixed in Redis).
    reconnectStrategy: (retries: number) => Math.min(maxRetryMs, FIRST_RETRY_MS * 2 ** Math.min(retries, 16)),
  };
  return createClient({
    socket: options.tls ? { ...common, tls: true as const, ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }) } : common,
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    // Fail fast while disconnected rather than queueing logins until Redis returns.
    disableOfflineQueue: true,
    // The client's own timeout covers only commands not yet written; #run adds the deadline for the answer.
    commandOptions: { timeout: commandTimeoutMs },
  });
}
type Client = ReturnType<typeof newClient>;

export async function openRedisStore(options: RedisStoreOptions): Promise<RedisAccountStore> {
  const store = new RedisAccountStore(options);
  await store.firstAttempt(options.initialConnectWaitMs ?? INITIAL_CONNECT_WAIT_MS);
  return store;
}

export class RedisAccountStore implements AccountStore {
  readonly kind = "redis";
  readonly where: string;
  readonly prefix: string;
  #client: Client;
  #log: Logger | undefined;
  #state: State = "connecting";
  #problem = "no connection yet";
  #commandTimeoutMs: number;
  #attempted: Array<() => void> = [];
  /** Connected, but a command went unanswered: fail fast until Redis answers again. */
  #hung = false;
  #hungAfterMs = 0;
  #heartbeat: ReturnType<typeof setInterval>;

  constructor(options: RedisStoreOptions) {
    this.where = options.host.includes(":") ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
    this.prefix = options.prefix;
    this.#log = options.log?.with({ store: "redis", redis: this.where });
    this.#commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
    this.#client = newClient(options, this.#commandTimeoutMs);
    // The client emits "error" on every failed attempt; without a listener that would crash the process.
    this.#client.on("error", (err: unknown) => this.#markDown(describeError(err)));
    this.#client.on("ready", () => {
      this.#hung = false; // a fresh connection
      this.#markUp();
    });
    // connect() settles only once connected (it retries forever) or when closed; state comes from the events.
    this.#client.connect().catch(() => {});
    this.#heartbeat = setInterval(() => {
      if (this.#state === "up") this.#run((c) => c.ping()).catch(() => {});
    }, HEARTBEAT_MS);
    this.#heartbeat.unref?.(); // never what keeps a process alive
  }

  /** Resolves once the first connection attempt has succeeded or failed, or after `ms`. */
  firstAttempt(ms: number): Promise<void> {
    if (this.#state !== "connecting") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#attempted = this.#attempted.filter((f) => f !== done);
        resolve();
      }, ms);
      this.#attempted.push(done);
    });
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
    switch (this.#state) {
      case "up":
        return { ok: true, detail: `redis at ${this.where}` };
      case "closed":
        return { ok: false, detail: "closed" };
      default:
        return { ok: false, detail: this.#hung && this.#client.isReady ? this.#unanswered() : this.#unreachable() };
    }
  }

  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#attempted.splice(0).forEach((f) => f());
    clearInterval(this.#heartbeat);
    // destroy, not close: nothing is in flight worth waiting for, and a reconnect loop must stop now.
    this.#client.destroy();
  }

  #unreachable(): string {
    return refusedLogin(this.#problem, this.where) ?? `redis at ${this.where} is not reachable (${this.#problem})`;
  }

  /**
   * One command (or a few) against a connected Redis, with a deadline for the
   * answer; connection trouble and hangs become {@link RedisUnavailable}.
   */
  async #run<T>(fn: (client: Client) => Promise<T>, timeoutMs = this.#commandTimeoutMs): Promise<T> {
    if (this.#state === "closed") throw new RedisUnavailable(unavailableMessage("the redis account store is closed"));
    if (!this.#client.isReady) throw new RedisUnavailable(unavailableMessage(this.#unreachable()));
    // Adding commands behind one Redis has not answered would only pile them up.
    if (this.#hung) throw new RedisUnavailable(unavailableMessage(this.#unanswered()));
    const pending = fn(this.#client);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    try {
      const outcome = await Promise.race([pending.then((value) => ({ value })), deadline]);
      if (outcome === "timeout") {
        this.#hung = true;
        this.#hungAfterMs = timeoutMs;
        this.#markDown(`no answer within ${timeoutMs} ms`);
        // Whatever Redis finally answers to this command shows it is back.
        pending.then(
          () => this.#answered(),
          (err) => err instanceof ErrorReply && this.#answered(),
        );
        throw new RedisUnavailable(unavailableMessage(this.#unanswered()));
      }
      this.#markUp();
      return outcome.value;
    } catch (err) {
      if (err instanceof RedisUnavailable) throw err;
      if (err instanceof ErrorReply) {
        this.#markUp(); // Redis answered; the caller decides what the error means
        throw err;
      }
      // The connection dropped mid-command; the "error" event has recorded why.
      throw new RedisUnavailable(unavailableMessage(this.#unreachable()));
    } finally {
      clearTimeout(timer);
    }
  }

  #unanswered(): string {
    return `redis at ${this.where} did not answer within ${this.#hungAfterMs} ms`;
  }

  #answered() {
    if (!this.#hung) return;
    this.#hung = false;
    this.#markUp();
  }

  #markDown(problem: string) {
    if (this.#state === "closed") return;
    this.#problem = problem;
    if (this.#state === "down") return; // logged when it went down; retries stay quiet
    const first = this.#state === "connecting";
    this.#state = "down";
    this.#attempted.splice(0).forEach((f) => f());
    const refused = refusedLogin(problem, this.where);
    this.#log?.warn(refused ? "account store cannot log in to redis" : first ? "account store cannot reach redis" : "account store lost redis", {
      error: refused ?? problem,
      note: "logins get 'account store unavailable' until it is back; reconnecting in the background",
    });
  }

  #markUp() {
    if (this.#state === "up" || this.#state === "closed") return;
    const recovered = this.#state === "down";
    this.#state = "up";
    this.#problem = "";
    this.#log?.info(recovered ? "account store reconnected to redis" : "account store connected to redis");
    this.#attempted.splice(0).forEach((f) => f());
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  if (err.message === "" && err instanceof AggregateError) return err.errors.map(describeError).join("; ");
  return err.message || (err as { code?: string }).code || err.name;
}

/** What an authentication refusal means for the operator; undefined for any other problem. */
function refusedLogin(problem: string, where: string): string | undefined {
  const fix = "database.redis.password (or BESTER_REDIS_PASSWORD) and database.redis.username";
  if (problem.startsWith("NOAUTH")) return `redis at ${where} requires a password and none is set; see ${fix}`;
  if (problem.startsWith("WRONGPASS")) return `redis at ${where} refused the username and password (${problem}); see ${fix}`;
  return undefined;
}

function isWrongType(err: unknown): boolean {
  return err instanceof ErrorReply && err.message.startsWith("WRONGTYPE");
}

/** The prefix as a literal inside a SCAN MATCH pattern. */
function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, "\\$&");
}
