/**
 * The delivery store on Redis: one server or a Redis Cluster, shared by
 * every gateway of a cluster. Each user's state and messages sit under one
 * hash tag (`<prefix>{u:NAME}:…`), and every change to them is one Lua script
 * (redis-scripts.ts): atomic per user, and allowed on Redis Cluster, which
 * forbids a script to touch two slots.
 *
 * Round trips: the client writes every command issued in one event-loop
 * turn in one socket write per node (node-redis queues commands and flushes
 * the queue in a `setImmediate`; nothing here awaits between the calls of a
 * turn), so a burst of appends costs one round trip, not one each. Replies
 * of one node come back in the order sent, so calls for one user are
 * answered in the order made; calls for users on different cluster nodes may
 * be answered in any order.
 *
 * What no single script can see (every user's messages) lives in an index
 * of INDEX_SHARDS shards (`<prefix>{ix:K}:…`, spread over the cluster's
 * slots): per user the oldest storedAt (for the expiry sweep) and the depth
 * (for depth()), with a total per shard. A script's answer is noted there
 * right after, by a separate command: a hint, which a crash between the two
 * can leave stale (docs/DELIVERY-STORE.md says how that is made good).
 * @module
 */
import { ErrorReply } from "redis";
import type { Logger } from "../log/logger.ts";
import {
  describeError,
  type RedisClient,
  type RedisCluster,
  RedisConnection,
  type RedisConnectionOptions,
  type RedisEndpoint,
  RedisUnavailable,
} from "../redis/connection.ts";
import { keySlot } from "../redis/key-slot.ts";
import type { Script } from "../redis/script.ts";
import { SCRIPTS } from "./redis-scripts.ts";
import type { DeliveryStore, InboxInfo, InboxLimits, StoredMessage, StoreFailure } from "./store.ts";

/**
 * Index shards. Enough to spread the index over the masters of a cluster,
 * few enough that depth() and a sweep cost a handful of commands. Fixed:
 * every gateway of a cluster must pick the same shard for a user, and
 * another count would strand the entries already there.
 */
export const INDEX_SHARDS = 16;
/** Users whose index entries one NOTE script call sets; bounds the work of one script. */
const NOTES_PER_CALL = 256;
/** Users one sweep step takes from an index shard. */
const SWEEP_PAGE = 256;
/**
 * A user's message list lives this long past the age limit after its last
 * append: the backstop for a user the index lost. Longer than any sweep
 * interval, so the sweep (which logs and counts) normally gets there first.
 */
const LIST_TTL_MARGIN_MS = 3600_000;
/** The same refusal from Redis is logged again after this, not at every call. */
const WARN_AGAIN_MS = 10_000;
/** A note the index did not take is tried again after this. */
const NOTE_RETRY_MS = 1000;

export interface RedisDeliveryStoreOptions extends RedisConnectionOptions {
  /** Put before every key (like `database.redis.prefix`); braces in it would put every key in one slot. */
  prefix: string;
  /** A Redis Cluster: `host`/`port` is one of its nodes; `nodes` may name more to find it through. */
  cluster?: boolean;
  nodes?: RedisEndpoint[];
}

/** A method that cannot answer because Redis does not; `code` as in {@link StoreFailure}. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  readonly code = "store_unavailable";
}

const ROLE = {
  name: "delivery store",
  unavailable: (detail: string) => `delivery store unavailable: ${detail}`,
  note: "messages that need the store get 'store_unavailable' until it is back; reconnecting in the background",
};

/** Deliveries one APPEND or ROUTE call carries at most: bounds the time one script holds Redis. */
const TURN_BATCH = 128;

/**
 * One delivery waiting for the end of the job that made it, when the
 * job's deliveries go as one script call per slot (and calling node):
 * APPEND's when `notify` is undefined, ROUTE's otherwise. Plain data, no
 * closures: a busy gateway makes one per message.
 */
interface TurnCall {
  user: string;
  keys: UserKeys;
  /** ROUTE's calling node ("" for APPEND). */
  origin: string;
  /** Its flags, one digit each (the script says which). */
  flags: string;
  type: string;
  data: string;
  notify: string | undefined;
  keep: boolean;
  resolve(outcome: RouteOutcome | { ok: true; seq: number } | StoreFailure): void;
}

/** One user's keys and channel (all in the user's hash slot). */
export interface UserKeys {
  state: string;
  messages: string;
  channel: string;
  presence: string;
}

/** What every user script answers first: how the user's inbox stands after it. */
type Summary = [expired: number, depth: number, oldest: number];

/** FNV-1a over the name's UTF-16 units: the same shard for a user on every gateway. */
export function indexShard(user: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < user.length; i++) h = Math.imul(h ^ user.charCodeAt(i), 0x01000193);
  return (h >>> 0) % INDEX_SHARDS;
}

export class RedisDeliveryStore implements DeliveryStore {
  readonly kind = "redis";
  readonly prefix: string;
  #redis: RedisConnection<RedisClient> | RedisConnection<RedisCluster>;
  #limits: () => InboxLimits;
  #log: Logger | undefined;
  /** Index notes not yet sent, by user: the latest answer wins. */
  #notes = new Map<string, { depth: number; oldest: number }>();
  #noteTimer: ReturnType<typeof setTimeout> | undefined;
  #noteScheduled = false;
  #flushing: Promise<void> = Promise.resolve();
  /** Messages removed for age by an append or a read, reported by the next expire(). */
  #expiredOnTheWay = new Map<string, number>();
  #closed = false;
  #warned = { message: "", at: 0 };
  /** Deliveries of the running job, not yet sent (append(), route()). */
  #turn: TurnCall[] = [];

  constructor(options: RedisDeliveryStoreOptions, limits: () => InboxLimits) {
    this.prefix = options.prefix;
    this.#limits = limits;
    this.#log = options.log?.with({ store: "redis" });
    this.#redis = options.cluster ? RedisConnection.cluster(options, ROLE, options.nodes) : RedisConnection.single(options, ROLE);
    // Loaded on every (re)connected node before any call can reach it, so a call never waits on NOSCRIPT.
    this.#redis.onNodeReady((client) => {
      for (const s of Object.values(SCRIPTS)) client.sendCommand(["SCRIPT", "LOAD", s.text]).catch(() => {});
      if (this.#notes.size > 0) this.#scheduleNotes();
    });
  }

  /** Resolves once the first connection attempt has succeeded or failed, or after `ms`. */
  firstAttempt(ms: number): Promise<void> {
    return this.#redis.firstAttempt(ms);
  }

  /** Keys and channel of one user, all in the user's hash slot. */
  keys(user: string): UserKeys {
    const base = `${this.prefix}{u:${user}}`;
    return { state: `${base}:s`, messages: `${base}:m`, channel: `${base}:n`, presence: `${base}:p` };
  }

  #shardKeys(k: number): [age: string, depth: string, total: string] {
    const base = `${this.prefix}{ix:${k}}`;
    return [`${base}:age`, `${base}:depth`, `${base}:total`];
  }

  /** A raw command, sent to the node that holds `key`; `late` gets an answer that comes after the deadline. */
  #send(key: string, args: string[], late?: (reply: unknown) => void): Promise<unknown> {
    // Deliveries made before this call go first: a read sees the append made before it.
    if (this.#turn.length > 0) this.#flushTurn();
    return this.#redis.run(
      (c) => (this.#redis.cluster ? (c as RedisCluster).sendCommand(key, false, args) : (c as RedisClient).sendCommand(args)),
      undefined,
      late,
    );
  }

  /** EVALSHA, or EVAL when the node has lost the script (SCRIPT FLUSH, a failover): EVAL loads it again. */
  async #eval(script: Script, keys: string[], args: Array<string | number>, late?: (reply: unknown) => void): Promise<unknown> {
    const rest = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await this.#send(keys[0]!, ["EVALSHA", script.sha, ...rest], late);
    } catch (err) {
      if (!(err instanceof ErrorReply && err.message.startsWith("NOSCRIPT"))) throw err;
      return this.#send(keys[0]!, ["EVAL", script.text, ...rest], late);
    }
  }

  /** A user script; notes its answer in the index when it changed the user's inbox, and collects what expired on the way. */
  async #user(
    script: Script,
    user: string,
    args: Array<string | number>,
    changes: (reply: unknown[]) => boolean,
  ): Promise<unknown[]> {
    const k = this.keys(user);
    const keys = [k.state, k.messages];
    const noted = (answer: unknown) => {
      const reply = answer as unknown[];
      this.#noteReply(user, reply, changes(reply));
      return reply;
    };
    // A change Redis carried out after the caller was told it was unavailable still reaches the index.
    return noted(await this.#eval(script, keys, args, noted));
  }

  #note(user: string, depth: number, oldest: number): void {
    this.#notes.set(user, { depth, oldest });
    this.#scheduleNotes();
  }

  #scheduleNotes(): void {
    if (this.#noteScheduled || this.#closed) return;
    this.#noteScheduled = true;
    // The next turn: the notes of every reply that arrived in this one go together.
    setImmediate(() => {
      this.#noteScheduled = false;
      this.#flushNotes().catch(() => {});
    });
  }

  /** Sends the pending notes, one script per shard (and per NOTES_PER_CALL users); what fails is kept for a retry. */
  #flushNotes(): Promise<void> {
    const run = async () => {
      if (this.#notes.size === 0) return;
      const batch = this.#notes;
      this.#notes = new Map();
      const byShard = new Map<number, Array<[string, { depth: number; oldest: number }]>>();
      for (const entry of batch) {
        const k = indexShard(entry[0]);
        const list = byShard.get(k) ?? byShard.set(k, []).get(k)!;
        list.push(entry);
      }
      const calls: Array<Promise<unknown>> = [];
      for (const [k, entries] of byShard) {
        for (let i = 0; i < entries.length; i += NOTES_PER_CALL) {
          const part = entries.slice(i, i + NOTES_PER_CALL);
          const args = part.flatMap(([user, n]) => [user, n.depth, n.oldest]);
          calls.push(
            this.#eval(SCRIPTS.note, this.#shardKeys(k), args).catch((err) => {
              // Kept unless a newer answer for the user came in meanwhile.
              for (const [user, n] of part) if (!this.#notes.has(user)) this.#notes.set(user, n);
              if (!this.#closed && this.#noteTimer === undefined) {
                this.#noteTimer = setTimeout(() => {
                  this.#noteTimer = undefined;
                  this.#scheduleNotes();
                }, NOTE_RETRY_MS);
                this.#noteTimer.unref?.();
              }
              throw err;
            }),
          );
        }
      }
      const results = await Promise.allSettled(calls);
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    };
    // One flush at a time, so notes for one user reach the index in the order their answers came.
    const next = this.#flushing.then(run, run);
    this.#flushing = next.catch(() => {});
    return next;
  }

  /**
   * Enters one message into the user's stream. The appends of one job (the
   * deliveries of one read of a handler's answers) go as one APPEND call per
   * hash slot (per TURN_BATCH), not one each.
   */
  append(user: string, type: string, data: string | undefined, keep: boolean): Promise<{ ok: true; seq: number } | StoreFailure> {
    const flags = (keep ? "1" : "0") + (data === undefined ? "0" : "1");
    return new Promise((resolve) =>
      this.#queueTurn({ user, keys: this.keys(user), origin: "", flags, type, data: data ?? "", notify: undefined, keep, resolve: resolve as TurnCall["resolve"] }),
    );
  }

  /**
   * A cluster's delivery to `user` (ROUTE in redis-scripts.ts): stored when
   * nobody is connected or an acknowledging session is, published on the
   * user's channel when another node than `origin` holds a session
   * (`notify`: the notification's head, cluster/message.ts). `here` says
   * what `origin` holds itself (its plain sessions have been written
   * already). With `mustExist`, a user with
   * no session and never seen is left alone (`unknown`).
   *
   * The calls made together (one read of a socket's frames, and so on) go
   * as one script call per hash slot (per TURN_BATCH deliveries), not one
   * per message, and the client writes all of a turn's calls at once.
   */
  route(
    user: string,
    type: string,
    data: string | undefined,
    origin: string,
    here: { plain: boolean; ack: boolean },
    mustExist: boolean,
    notify: string,
  ): Promise<RouteOutcome | StoreFailure> {
    const flag = (b: boolean) => (b ? "1" : "0");
    const flags = flag(data !== undefined) + flag(mustExist) + flag(here.plain) + flag(here.ack);
    return new Promise((resolve) =>
      this.#queueTurn({ user, keys: this.keys(user), origin, flags, type, data: data ?? "", notify, keep: true, resolve: resolve as TurnCall["resolve"] }),
    );
  }

  #queueTurn(call: TurnCall): void {
    this.#turn.push(call);
    // At the end of this job, not the next turn: the client writes what the turn sent in its own setImmediate.
    if (this.#turn.length === 1) queueMicrotask(() => this.#flushTurn());
  }

  /** Sends the job's deliveries: grouped by script, slot and calling node, in the order they were made within each group. */
  #flushTurn(): void {
    const calls = this.#turn;
    if (calls.length === 0) return;
    this.#turn = [];
    const groups = new Map<string, TurnCall[]>();
    for (const c of calls) {
      const slot = this.#redis.cluster ? keySlot(c.keys.state) : 0;
      const key = c.notify === undefined ? `a ${slot}` : `r ${slot} ${c.origin}`;
      const group = groups.get(key) ?? groups.set(key, []).get(key)!;
      group.push(c);
    }
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += TURN_BATCH) this.#sendBatch(group.slice(i, i + TURN_BATCH));
    }
  }

  #sendBatch(batch: TurnCall[]): void {
    const route = batch[0]!.notify !== undefined;
    // One set of limits and one clock reading for the whole call.
    const limits = this.#limits();
    const now = Date.now();
    const bounds = `${now} ${now - limits.maxAgeSeconds * 1000} ${limits.maxMessages} ${limits.maxBytes} ${limits.maxAgeSeconds * 1000 + LIST_TTL_MARGIN_MS}`;
    const keys: string[] = [];
    const args: string[] = route ? [batch[0]!.origin, bounds] : [bounds];
    for (const c of batch) {
      const k = c.keys;
      if (route) {
        keys.push(k.state, k.messages, k.presence, k.channel);
        args.push(c.flags, c.type, c.data, c.notify!);
      } else {
        keys.push(k.state, k.messages);
        args.push(c.flags, c.type, c.data);
      }
    }
    // Also for an answer that comes after the deadline: a change Redis carried out reaches the index.
    const noted = (answer: unknown) => {
      const replies = answer as unknown[][];
      for (let i = 0; i < batch.length; i++) {
        const r = replies[i]!;
        const stored = Number(r[3]) === 1;
        this.#noteReply(batch[i]!.user, r, route ? stored && Number(r[4]) > 0 && Number(r[6]) === 1 : stored && batch[i]!.keep);
      }
      return replies;
    };
    this.#eval(route ? SCRIPTS.route : SCRIPTS.append, keys, args, noted).then(
      (answer) => {
        const replies = noted(answer);
        for (let i = 0; i < batch.length; i++) settle(batch[i]!, replies[i]!, limits);
      },
      (err: unknown) => {
        const failure = this.#failure(err);
        for (const c of batch) c.resolve(failure);
      },
    );
  }

  /** Collects what a user script removed for age, and notes the user in the index when its inbox changed. */
  #noteReply(user: string, reply: unknown[], changed: boolean): void {
    const [expired, depth, oldest] = reply.slice(0, 3).map(Number) as Summary;
    if (expired > 0) this.#expiredOnTheWay.set(user, (this.#expiredOnTheWay.get(user) ?? 0) + expired);
    if (expired > 0 || changed) this.#note(user, depth, oldest);
  }

  async read(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    if (!(limit >= 1)) return [];
    const cut = Date.now() - this.#limits().maxAgeSeconds * 1000;
    const reply = await this.#call(() => this.#user(SCRIPTS.read, user, [Math.max(0, Math.floor(after)), Math.floor(limit), cut], () => false));
    return (reply[3] as Array<[number, number, string, string | null]>).map(([seq, storedAt, type, data]) => ({
      seq: Number(seq),
      type,
      data: data ?? undefined,
      storedAt: Number(storedAt),
    }));
  }

  async ack(user: string, seq: number): Promise<{ ok: true } | StoreFailure> {
    if (!Number.isSafeInteger(seq)) {
      return { ok: false, code: "bad_ack", message: `seq ${seq} was never sent to ${user}: a seq is a whole number` };
    }
    try {
      const reply = await this.#user(SCRIPTS.ack, user, [seq], (r) => Number(r[3]) === 1 && Number(r[4]) > 0);
      if (Number(reply[3]) === 1) return { ok: true };
      return { ok: false, code: "bad_ack", message: `seq ${seq} was never sent to ${user}: the last one sent is ${Number(reply[4])}` };
    } catch (err) {
      return this.#failure(err);
    }
  }

  async drop(user: string, seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 1) return;
    await this.#call(() => this.#user(SCRIPTS.drop, user, [seq], (r) => Number(r[3]) > 0));
  }

  async login(user: string, ack: boolean): Promise<{ acked: number; reset: boolean }> {
    const reply = (await this.#call(() => this.#eval(SCRIPTS.login, [this.keys(user).state], [ack ? 1 : 0]))) as unknown[];
    return { acked: Number(reply[0]), reset: Number(reply[1]) === 1 };
  }

  async knows(user: string): Promise<boolean> {
    const key = this.keys(user).state;
    return Number(await this.#call(() => this.#send(key, ["EXISTS", key]))) === 1;
  }

  async inbox(user: string): Promise<InboxInfo | undefined> {
    const k = this.keys(user);
    const reply = (await this.#call(() => this.#eval(SCRIPTS.inbox, [k.state, k.messages], []))) as unknown[] | null;
    if (reply === null) return undefined;
    const [lastSeq, acked, depth, bytes, oldest] = reply.map(Number) as [number, number, number, number, number];
    return { username: user, depth, bytes, oldest: depth === 0 ? undefined : oldest, lastSeq, acked };
  }

  async clear(user: string): Promise<number> {
    const reply = await this.#call(() => this.#user(SCRIPTS.clear, user, [], (r) => Number(r[3]) > 0));
    return Number(reply[3]);
  }

  /**
   * Sweeps the index: every user whose oldest message is older than
   * `before` has its old messages removed by its own script, shard by
   * shard, page by page. Adds what appends and reads removed for age since
   * the last call.
   */
  async expire(before: number): Promise<Array<{ user: string; count: number }>> {
    const counts = new Map<string, number>();
    const add = (user: string, n: number) => n > 0 && counts.set(user, (counts.get(user) ?? 0) + n);
    await this.#call(() => this.#flushNotes());
    await Promise.all(
      Array.from({ length: INDEX_SHARDS }, async (_, k) => {
        const [age] = this.#shardKeys(k);
        const seen = new Set<string>();
        for (;;) {
          const users = (await this.#call(() => this.#send(age, ["ZRANGEBYSCORE", age, "-inf", `(${before}`, "LIMIT", "0", String(SWEEP_PAGE)]))) as string[];
          const fresh = users.filter((u) => !seen.has(u));
          // A user noted again but not moved (a note that failed) is not swept twice in one call.
          if (fresh.length === 0) return;
          fresh.forEach((u) => seen.add(u));
          const replies = await Promise.all(
            fresh.map((u) =>
              this.#call(async () => {
                const k = this.keys(u);
                return (await this.#eval(SCRIPTS.expire, [k.state, k.messages], [before])) as unknown[];
              }),
            ),
          );
          fresh.forEach((u, i) => {
            const [expired, depth, oldest] = replies[i]!.map(Number) as Summary;
            add(u, expired);
            // Noted even when nothing was removed: an entry the index had wrong is set right.
            this.#note(u, depth, oldest);
          });
          await this.#call(() => this.#flushNotes());
          if (users.length < SWEEP_PAGE) return;
        }
      }),
    );
    for (const [user, n] of this.#expiredOnTheWay) add(user, n);
    this.#expiredOnTheWay.clear();
    return [...counts].map(([user, count]) => ({ user, count }));
  }

  /** The shards' totals, after this store's own notes are in. */
  async depth(): Promise<number> {
    await this.#call(() => this.#flushNotes());
    const totals = await Promise.all(
      Array.from({ length: INDEX_SHARDS }, (_, k) => {
        const total = this.#shardKeys(k)[2];
        return this.#call(() => this.#send(total, ["GET", total]));
      }),
    );
    return totals.reduce<number>((sum, t) => sum + Number(t ?? 0), 0);
  }

  /** The fullest inboxes by the index (each shard's top `limit`, merged), then each user's own answer. */
  async largest(limit: number): Promise<InboxInfo[]> {
    await this.#call(() => this.#flushNotes());
    const tops = await Promise.all(
      Array.from({ length: INDEX_SHARDS }, (_, k) => {
        const depth = this.#shardKeys(k)[1];
        return this.#call(() => this.#send(depth, ["ZRANGE", depth, "0", String(limit - 1), "REV", "WITHSCORES"])) as Promise<unknown[]>;
      }),
    );
    const candidates: Array<[string, number]> = [];
    for (const top of tops) {
      // RESP3 answers [member, score] pairs; RESP2 a flat list.
      if (top.length > 0 && Array.isArray(top[0])) for (const [user, score] of top as [string, unknown][]) candidates.push([String(user), Number(score)]);
      else for (let i = 0; i + 1 < top.length; i += 2) candidates.push([String(top[i]), Number(top[i + 1])]);
    }
    candidates.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const infos = await Promise.all(candidates.slice(0, limit).map(([user]) => this.inbox(user)));
    return infos
      .filter((i): i is InboxInfo => i !== undefined && i.depth > 0)
      .sort((a, b) => b.depth - a.depth || a.username.localeCompare(b.username));
  }

  health(): { ok: boolean; detail: string } {
    return this.#redis.health();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Notes still pending go out if Redis takes them; a store closing is no reason to wait for one that does not.
    await this.#flushNotes().catch(() => {});
    this.#closed = true;
    clearTimeout(this.#noteTimer);
    this.#redis.close();
  }

  /** A call whose failure is thrown: Redis's trouble as {@link StoreUnavailableError}. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreUnavailableError(this.#failure(err).message, { cause: err });
    }
  }

  #failure(err: unknown): StoreFailure {
    if (err instanceof RedisUnavailable) return { ok: false, code: "store_unavailable", message: err.message };
    // An answer Redis gave that is not one (OOM, CLUSTERDOWN, a broken script): the store cannot do it either.
    const message = ROLE.unavailable(`${this.#redis.where} answered: ${describeError(err)}`);
    // Said once per kind of answer while it lasts, not once per call (a cluster that is down answers every call alike).
    const now = Date.now();
    if (message !== this.#warned.message || now - this.#warned.at > WARN_AGAIN_MS) {
      this.#warned = { message, at: now };
      this.#log?.warn("delivery store call failed", { error: describeError(err) });
    }
    return { ok: false, code: "store_unavailable", message };
  }
}

/** What ROUTE did: `seq` 0 when it stored nothing; `others`: nodes notified; `kept`: stored until done. Or: a user never seen, with no session. */
export type RouteOutcome = { ok: true; seq: number; others: number; kept: boolean; unknown?: undefined } | { ok: true; unknown: true };

/** Answers one delivery of a batch from its script's reply. */
function settle(c: TurnCall, r: unknown[], limits: InboxLimits): void {
  switch (Number(r[3])) {
    case 1:
      return c.resolve(c.notify === undefined ? { ok: true, seq: Number(r[4]) } : { ok: true, seq: Number(r[4]), others: Number(r[5]), kept: Number(r[6]) === 1 });
    case 2:
      return c.resolve(full(c.user, `${Number(r[4])} messages wait already, the limit is ${limits.maxMessages}`));
    case 3:
      return c.resolve(full(c.user, `${Number(r[4])} bytes wait already, and this message adds ${Number(r[5])}; the limit is ${limits.maxBytes}`));
    default:
      return c.resolve({ ok: true, unknown: true });
  }
}

function full(user: string, why: string): StoreFailure {
  return { ok: false, code: "inbox_full", message: `the inbox of ${user} is full: ${why}` };
}

/**
 * Opens the store and waits (briefly) for the first connection attempt; it
 * opens even when Redis is not there yet, answering `store_unavailable`
 * until Redis is.
 */
export async function openRedisDeliveryStore(options: RedisDeliveryStoreOptions, limits: () => InboxLimits): Promise<RedisDeliveryStore> {
  const store = new RedisDeliveryStore(options, limits);
  await store.firstAttempt(options.initialConnectWaitMs ?? RedisConnection.INITIAL_CONNECT_WAIT_MS);
  return store;
}
