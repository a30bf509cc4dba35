/**
 * This node's part of the cluster's presence: which of its users have how
 * many sessions (plain and acknowledging), written to each user's presence
 * hash and to the node's own list of users, and the subscription to each
 * such user's channel. Writes are absolute counts, made per user one after
 * the other, so the last write always says how things stand.
 * @module
 */
import { PRESENCE_STEPS_IN_FLIGHT } from "../config/defaults.ts";
import type { ClusterKeys } from "./keys.ts";
import type { ClusterRedis, Listener } from "./redis.ts";
import { CLUSTER_SCRIPTS } from "./scripts.ts";

interface Count {
  plain: number;
  ack: number;
}

export class Presence {
  #running = 0;
  #waiting: Array<() => void> = [];

  /** Local sessions by user: the truth Redis is brought back to after trouble. */
  readonly local = new Map<string, Count>();
  #subscribed = new Set<string>();
  #chains = new Map<string, Promise<void>>();
  /** Set when a write failed: the node registers everything again once Redis answers. */
  stale = false;

  constructor(
    private readonly redis: ClusterRedis,
    private readonly keys: ClusterKeys,
    private readonly node: string,
    private readonly epoch: () => number,
    private readonly listener: Listener,
  ) {}

  get sessions(): number {
    let n = 0;
    for (const c of this.local.values()) n += c.plain + c.ack;
    return n;
  }

  /** A session of `user` logged in here: subscribed to the user's channel, then present. Resolves when both are done (or failed). */
  join(user: string, ack: boolean): Promise<void> {
    const c = this.local.get(user) ?? { plain: 0, ack: 0 };
    if (ack) c.ack++;
    else c.plain++;
    this.local.set(user, c);
    return this.#chain(user, () => this.#sync(user));
  }

  /** A session of `user` closed here: presence first, then, after the last one, the subscription. */
  leave(user: string, ack: boolean): void {
    const c = this.local.get(user);
    if (c === undefined) return;
    if (ack) c.ack = Math.max(0, c.ack - 1);
    else c.plain = Math.max(0, c.plain - 1);
    if (c.plain + c.ack === 0) this.local.delete(user);
    void this.#chain(user, () => this.#sync(user));
  }

  /** Brings Redis to the local counts of `user` (subscription included). */
  async #sync(user: string): Promise<void> {
    try {
      if (this.local.has(user) && !this.#subscribed.has(user)) {
        await this.redis.subscribe(this.keys.channel(user), this.listener);
        this.#subscribed.add(user);
      }
      // Read now, not when queued: the write says how things stand when it leaves.
      const c = this.local.get(user) ?? { plain: 0, ack: 0 };
      await this.write(user, c.plain, c.ack);
    } catch {
      this.stale = true;
    }
    // Whether or not the write went through: a user gone from here is not listened for.
    await this.#unsubscribeIfGone(user);
  }

  async #unsubscribeIfGone(user: string): Promise<void> {
    if (this.local.has(user) || !this.#subscribed.has(user)) return;
    this.#subscribed.delete(user);
    try {
      await this.redis.unsubscribe(this.keys.channel(user));
    } catch {
      this.stale = true;
    }
  }

  /** The user's presence field for this node and the node's list of users, at the current epoch. */
  async write(user: string, plain: number, ack: number): Promise<void> {
    const epoch = this.epoch();
    const nodeUsers = this.keys.nodeUsers(this.node, epoch);
    // The node's list first: a purge finds every user whose presence names the node.
    if (plain + ack > 0) await this.redis.send(nodeUsers, ["HSET", nodeUsers, user, String(plain + ack)]);
    await this.redis.eval(CLUSTER_SCRIPTS.presence, [this.keys.presence(user)], [this.node, epoch, user, plain, ack]);
    if (plain + ack === 0) await this.redis.send(nodeUsers, ["HDEL", nodeUsers, user]);
  }

  /** Every local user written again (a new epoch), subscriptions made good; throws if Redis does not take it. */
  async registerAll(): Promise<void> {
    const users = [...this.local.keys()];
    // Subscriptions of users who left while Redis did not answer.
    for (const user of this.#subscribed) if (!this.local.has(user)) void this.#chain(user, () => this.#unsubscribeIfGone(user));
    await Promise.all(
      users.map((user) =>
        this.#chain(user, async () => {
          if (this.local.has(user) && !this.#subscribed.has(user)) {
            await this.redis.subscribe(this.keys.channel(user), this.listener);
            this.#subscribed.add(user);
          }
          const c = this.local.get(user) ?? { plain: 0, ack: 0 };
          await this.write(user, c.plain, c.ack);
        }, true),
      ),
    );
  }

  /**
   * Runs `step` after the user's earlier steps, and with at most
   * PRESENCE_STEPS_IN_FLIGHT users' steps at Redis at once, so a burst of
   * logins or logouts queues here instead of piling up past the command
   * deadline; failures are the step's own (or thrown, with `rethrow`).
   */
  #chain(user: string, step: () => Promise<void>, rethrow = false): Promise<void> {
    const before = this.#chains.get(user) ?? Promise.resolve();
    const run = before.then(() => this.#limited(step));
    const tail = run.catch(() => {});
    this.#chains.set(user, tail);
    void tail.then(() => {
      if (this.#chains.get(user) === tail) this.#chains.delete(user);
    });
    return rethrow ? run : tail;
  }

  async #limited(step: () => Promise<void>): Promise<void> {
    if (this.#running >= PRESENCE_STEPS_IN_FLIGHT) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      await step();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}
