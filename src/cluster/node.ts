/**
 * One gateway as a node of a cluster (docs/CLUSTER.md): its presence in
 * Redis, its heartbeat and the purge of dead nodes, the channels it listens
 * on (its users', its own control channel), and what it must do after Redis
 * trouble before it says it is ready again: register everything anew and see
 * a probe it published to itself arrive.
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import { CLUSTER_PROBE_TIMEOUT_MS } from "../config/defaults.ts";
import type { Logger } from "../log/logger.ts";
import { RedisConnection, type RedisConnectionOptions, type RedisEndpoint } from "../redis/connection.ts";
import { ClusterKeys } from "./keys.ts";
import { decodeControl, decodeNotifications, encodeNotificationHead, type Notification } from "./message.ts";
import { Presence } from "./presence.ts";
import { ClusterRedis } from "./redis.ts";
import { type NodeInfo, NodeRegistry, type NodeSelf } from "./registry.ts";

export type { NodeInfo } from "./registry.ts";

export interface ClusterNodeOptions {
  node: string;
  heartbeatMs: number;
  deadAfterMs: number;
  /** The delivery store's Redis and key prefix. */
  redis: RedisConnectionOptions & { cluster?: boolean; nodes?: RedisEndpoint[] };
  prefix: string;
  version: string;
  log: Logger;
  /** Writes a message another node routed to `user`'s sessions here; returns how many took it. */
  deliverLocal(user: string, n: Notification): number;
  /** Closes `user`'s sessions here at another node's request; returns how many. */
  disconnectLocal(user: string, reason: string): number;
  /** Where this node's clients connect, for the registry. */
  listeners(): string[];
}

/** Counters for /metrics. */
export interface ClusterCounters {
  sent: number;
  received: number;
  purges: number;
  purgedUsers: number;
}

export class ClusterNode {
  readonly name: string;
  readonly counters: ClusterCounters = { sent: 0, received: 0, purges: 0, purgedUsers: 0 };
  readonly #o: ClusterNodeOptions;
  readonly #redis: ClusterRedis;
  readonly #keys: ClusterKeys;
  readonly #presence: Presence;
  readonly #registry: NodeRegistry;
  readonly #started = new Date().toISOString();
  #epoch = 0;
  /** Registered at the current epoch, subscribed, and the probe came back: ready. */
  #synced = false;
  #problem = "not registered yet";
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | undefined;
  #probes = new Map<string, () => void>();
  #closed = false;
  /** Nodes registered at the last heartbeat, for the gauge. */
  #nodeCount = 0;
  #taken = false;
  #controlSubscribed = false;

  constructor(options: ClusterNodeOptions) {
    this.#o = options;
    this.name = options.node;
    this.#keys = new ClusterKeys(options.prefix);
    this.#redis = new ClusterRedis(options.redis, options.log);
    this.#presence = new Presence(this.#redis, this.#keys, this.name, () => this.#epoch, (text, channel) => this.#onUserMessage(text, channel));
    this.#registry = new NodeRegistry(this.#redis, this.#keys, this.name);
  }

  /** Connects, registers and starts beating; a Redis that is not there yet is waited for in the background. */
  async start(): Promise<void> {
    await this.#redis.firstAttempt(RedisConnection.INITIAL_CONNECT_WAIT_MS);
    this.#timer = setInterval(() => void this.#tick(), this.#o.heartbeatMs);
    this.#timer.unref?.();
    await this.#tick();
  }

  /** A clean stop: its users' presence and its registry entry removed, so nobody waits for it to be declared dead. */
  async stop(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#ticking?.catch(() => {});
    try {
      if (this.#epoch > 0) await this.#registry.purge(this.name, this.#epoch);
      // A name another gateway has taken since is that gateway's entry now.
      if (!this.#taken) await this.#registry.leave();
    } catch (err) {
      this.#o.log.warn("cluster: could not leave cleanly; the others will purge this node when its heartbeat is old", { error: (err as Error).message });
    }
    this.#redis.close();
  }

  /** A session logged in here; resolves once it is present and subscribed (or that failed and will be made good). */
  join(user: string, ack: boolean): Promise<void> {
    return this.#presence.join(user, ack);
  }

  leave(user: string, ack: boolean): void {
    this.#presence.leave(user, ack);
  }

  /** What a delivery script publishes for other nodes between the seq and the data. */
  notification(type: string, data: string | undefined): string {
    return encodeNotificationHead(this.name, type, data);
  }

  /** A delivery went out to other nodes. */
  sent(nodes: number): void {
    this.counters.sent += nodes;
  }

  health(): { ok: boolean; detail: string } {
    const redis = this.#redis.health();
    if (!redis.ok) return { ok: false, detail: `cluster: ${redis.detail}` };
    if (this.#taken) return { ok: false, detail: `cluster: another gateway registered as node ${this.name}; give each node its own cluster.node` };
    if (!this.#synced) return { ok: false, detail: `cluster: ${this.#problem}` };
    if (this.#presence.stale) return { ok: false, detail: "cluster: a presence write did not reach redis; registering again at the next heartbeat" };
    return { ok: true, detail: `cluster node ${this.name}` };
  }

  get nodeCount(): number {
    return this.#nodeCount;
  }

  get localSessions(): number {
    return this.#presence.sessions;
  }

  nodes(): Promise<NodeInfo[]> {
    return this.#registry.list();
  }

  /** Every user with sessions on any live node, with the nodes and their session counts there. */
  async clients(): Promise<Map<string, Array<{ node: string; sessions: number }>>> {
    const out = new Map<string, Array<{ node: string; sessions: number }>>();
    for (const n of await this.nodes()) {
      if (n.epoch === undefined) continue;
      const users = n.self ? new Map([...this.#presence.local].map(([u, c]) => [u, c.plain + c.ack])) : await this.#registry.usersOf(n.node, n.epoch);
      for (const [user, sessions] of users) {
        const list = out.get(user) ?? out.set(user, []).get(user)!;
        list.push({ node: n.node, sessions });
      }
    }
    return out;
  }

  /** Whether `user` has a session on any node, by the user's presence. */
  async isClient(user: string): Promise<boolean> {
    if (this.#presence.local.has(user)) return true;
    const p = this.#keys.presence(user);
    return Number(await this.#redis.send(p, ["HLEN", p])) > 0;
  }

  /** Sessions on every node: this node's now, the others' as of their last heartbeat. */
  async sessionCount(): Promise<number> {
    let n = 0;
    for (const node of await this.nodes()) n += node.self ? this.localSessions : (node.sessions ?? 0);
    return n;
  }

  /** Asks every other node holding a session of `user` to close it; returns how many sessions they hold. */
  async disconnectRemote(user: string, reason: string): Promise<number> {
    const p = this.#keys.presence(user);
    const fields = (await this.#redis.send(p, ["HGETALL", p])) as unknown;
    const entries: Array<[string, string]> = Array.isArray(fields)
      ? fields.flatMap((f, i) => (i % 2 === 0 ? [[String(f), String(fields[i + 1])] as [string, string]] : []))
      : Object.entries((fields ?? {}) as Record<string, string>).map(([k, v]) => [k, String(v)]);
    let count = 0;
    for (const [node, value] of entries) {
      if (node === this.name) continue;
      const [, plain, ack] = value.split(" ").map(Number) as [number, number, number];
      count += plain + ack;
      const channel = this.#keys.control(node);
      await this.#redis.send(channel, ["SPUBLISH", channel, JSON.stringify({ op: "disconnect", user, reason, from: this.name })]);
    }
    return count;
  }

  #onUserMessage(text: string, channel: string): void {
    const user = this.#keys.userOfChannel(channel);
    if (user === undefined) return;
    for (const n of decodeNotifications(text)) {
      // Its own deliveries the sending node wrote itself.
      if (n.origin === this.name) continue;
      this.counters.received++;
      this.#o.deliverLocal(user, n);
    }
  }

  #onControl(text: string): void {
    const m = decodeControl(text);
    if (m === undefined) return;
    if (m.op === "probe") this.#probes.get(m.id)?.();
    else {
      const n = this.#o.disconnectLocal(m.user, m.reason);
      this.#o.log.info("cluster: sessions closed at another node's request", { user: m.user, from: m.from, sessions: n });
    }
  }

  #self(): NodeSelf {
    return {
      epoch: this.#epoch,
      started: this.#started,
      sessions: this.#presence.sessions,
      users: this.#presence.local.size,
      listeners: this.#o.listeners(),
      version: this.#o.version,
    };
  }

  /** One heartbeat, never two at once. */
  #tick(): Promise<void> {
    if (this.#ticking !== undefined || this.#closed) return this.#ticking ?? Promise.resolve();
    this.#ticking = this.#beat().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #beat(): Promise<void> {
    if (!this.#redis.health().ok) {
      if (this.#synced) this.#problem = "redis was lost; registering again once it is back";
      this.#synced = false;
      return;
    }
    try {
      if (!this.#synced || this.#presence.stale) await this.#register();
      else {
        const beat = await this.#registry.beat(this.#self());
        if (beat === "missing") {
          this.#o.log.warn("cluster: this node was declared dead by the others (no heartbeat in time); registering its users again", { node: this.name });
          this.#synced = false;
          this.#problem = "declared dead by the others; registering again";
          await this.#register();
        } else if (beat === "taken") {
          if (!this.#taken) this.#o.log.error("cluster: another gateway registered under this node's name", { node: this.name });
          this.#taken = true;
        } else this.#taken = false;
      }
      for (const p of await this.#registry.purgeDead(this.#o.deadAfterMs)) {
        this.counters.purges++;
        this.counters.purgedUsers += p.users;
        this.#o.log.warn("cluster: node declared dead, its sessions purged", { node: p.node, users: p.users, deadAfterMs: this.#o.deadAfterMs });
      }
      this.#nodeCount = (await this.#registry.list()).length;
    } catch (err) {
      this.#synced = false;
      this.#problem = `redis did not take the heartbeat: ${(err as Error).message}`;
    }
  }

  /** A new epoch: subscribed to its control channel, every local user written, the old epoch purged, then proven by a probe. */
  async #register(): Promise<void> {
    this.#epoch = Math.max(this.#epoch + 1, Date.now());
    this.#presence.stale = false;
    // Once: the client subscribes again by itself after a reconnect.
    if (!this.#controlSubscribed) {
      await this.#redis.subscribe(this.#keys.control(this.name), (text) => this.#onControl(text));
      this.#controlSubscribed = true;
    }
    await this.#presence.registerAll();
    const old = await this.#registry.register(this.#self());
    if (old > 0 && old !== this.#epoch) {
      const users = await this.#registry.purge(this.name, old);
      this.#o.log.info("cluster: this node's earlier registration removed", { node: this.name, users });
    }
    await this.#probe();
    const was = this.#problem;
    this.#synced = true;
    this.#o.log.info("cluster: node registered", { node: this.name, epoch: this.#epoch, users: this.#presence.local.size, after: was });
  }

  /** Publishes to its own control channel and waits to hear it: the path works end to end. */
  async #probe(): Promise<void> {
    const id = `${this.#epoch}-${Math.random().toString(36).slice(2)}`;
    const heard = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#probes.delete(id);
        reject(new Error(`a probe published to this node did not arrive within ${CLUSTER_PROBE_TIMEOUT_MS} ms`));
      }, CLUSTER_PROBE_TIMEOUT_MS);
      this.#probes.set(id, () => {
        clearTimeout(timer);
        this.#probes.delete(id);
        resolve();
      });
    });
    const channel = this.#keys.control(this.name);
    await this.#redis.send(channel, ["SPUBLISH", channel, JSON.stringify({ op: "probe", id })]);
    await heard;
  }
}
