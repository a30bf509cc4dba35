/**
 * The registry of a cluster's nodes: each node's last heartbeat and what it
 * says of itself, and the purge of a node that stopped beating. A purge is
 * claimed in one script (so one live node does it), then carried out page by
 * page over the dead node's list of users, removing only the presence fields
 * of the dead node's epoch.
 * @module
 */
import { CLUSTER_PURGE_PAGE, CLUSTER_PURGE_TAKEOVER_MS } from "../config/defaults.ts";
import type { ClusterKeys } from "./keys.ts";
import type { ClusterRedis } from "./redis.ts";
import { CLUSTER_SCRIPTS } from "./scripts.ts";

/** What a node says of itself at each heartbeat. */
export interface NodeSelf {
  epoch: number;
  started: string;
  sessions: number;
  users: number;
  /** Where its clients connect, as "kind address". */
  listeners: string[];
  version: string;
}

/** A node as GET /v1/cluster shows it. */
export interface NodeInfo extends Partial<NodeSelf> {
  node: string;
  lastHeartbeat: string;
  /** Ms since its last heartbeat. */
  silentMs: number;
  self: boolean;
}

export class NodeRegistry {
  constructor(
    private readonly redis: ClusterRedis,
    private readonly keys: ClusterKeys,
    private readonly node: string,
  ) {}

  /** Enters this node under `self.epoch`; returns the epoch it had before (0: none), whose leftovers are to be purged. */
  async register(self: NodeSelf): Promise<number> {
    const [nodes, info] = this.keys.registry();
    return Number(await this.redis.eval(CLUSTER_SCRIPTS.register, [nodes, info], [this.node, self.epoch, Date.now(), JSON.stringify(self)]));
  }

  /** "ok", "missing" (purged: register again) or "taken" (another gateway registered this name since). */
  async beat(self: NodeSelf): Promise<"ok" | "missing" | "taken"> {
    const [nodes, info] = this.keys.registry();
    const r = Number(await this.redis.eval(CLUSTER_SCRIPTS.heartbeat, [nodes, info], [this.node, self.epoch, Date.now(), JSON.stringify(self)]));
    return r === 0 ? "ok" : r === 1 ? "missing" : "taken";
  }

  /** Leaves the registry (a clean stop), the node's own presence having been removed already. */
  async leave(): Promise<void> {
    const [nodes, info] = this.keys.registry();
    await Promise.all([this.redis.send(nodes, ["ZREM", nodes, this.node]), this.redis.send(info, ["HDEL", info, this.node])]);
  }

  async list(): Promise<NodeInfo[]> {
    const [nodes, info] = this.keys.registry();
    const flat = (await this.redis.eval(CLUSTER_SCRIPTS.nodes, [nodes, info], [])) as unknown[];
    const now = Date.now();
    const out: NodeInfo[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const node = String(flat[i]);
      const beat = Number(flat[i + 1]);
      let self: Partial<NodeSelf> = {};
      try {
        if (typeof flat[i + 2] === "string") self = JSON.parse(flat[i + 2] as string) as NodeSelf;
      } catch {
        // a node of another version; shown with what is known
      }
      out.push({ node, lastHeartbeat: new Date(beat).toISOString(), silentMs: Math.max(0, now - beat), self: node === this.node, ...self });
    }
    return out.sort((a, b) => a.node.localeCompare(b.node));
  }

  /** Nodes silent for longer than `deadAfterMs`, each claimed and purged here; returns what was purged. */
  async purgeDead(deadAfterMs: number): Promise<Array<{ node: string; epoch: number; users: number }>> {
    const [nodes, info, purging] = this.keys.registry();
    const now = Date.now();
    const dead = (await this.redis.send(nodes, ["ZRANGEBYSCORE", nodes, "-inf", `(${now - deadAfterMs}`])) as string[];
    const done: Array<{ node: string; epoch: number; users: number }> = [];
    // Also one purge left unfinished by a purger that died, if any.
    for (const node of [...dead.filter((n) => n !== this.node), ""]) {
      const claimed = await this.redis.eval(
        CLUSTER_SCRIPTS.claim,
        [nodes, info, purging],
        [node, now - deadAfterMs, now, now - CLUSTER_PURGE_TAKEOVER_MS],
      );
      if (typeof claimed !== "string") continue;
      const [name, epochText] = claimed.split(" ") as [string, string];
      const epoch = Number(epochText);
      const users = await this.purge(name, epoch);
      await this.redis.send(purging, ["ZREM", purging, claimed]);
      done.push({ node: name, epoch, users });
    }
    return done;
  }

  /** Removes the presence `node` wrote in `epoch`, and its list of users; returns how many users it named. */
  async purge(node: string, epoch: number): Promise<number> {
    const list = this.keys.nodeUsers(node, epoch);
    let cursor = "0";
    let users = 0;
    do {
      const reply = (await this.redis.send(list, ["HSCAN", list, cursor, "COUNT", String(CLUSTER_PURGE_PAGE)])) as [string, unknown];
      cursor = String(reply[0]);
      const page = fieldsOf(reply[1]);
      users += page.length;
      await Promise.all(page.map((user) => this.redis.eval(CLUSTER_SCRIPTS.purgeUser, [this.keys.presence(user)], [node, epoch])));
    } while (cursor !== "0");
    await this.redis.send(list, ["DEL", list]);
    return users;
  }

  /** The users a node lists, with their session counts there. */
  async usersOf(node: string, epoch: number): Promise<Map<string, number>> {
    const list = this.keys.nodeUsers(node, epoch);
    const out = new Map<string, number>();
    let cursor = "0";
    do {
      const reply = (await this.redis.send(list, ["HSCAN", list, cursor, "COUNT", String(CLUSTER_PURGE_PAGE)])) as [string, unknown];
      cursor = String(reply[0]);
      const pairs = reply[1];
      if (Array.isArray(pairs)) for (let i = 0; i + 1 < pairs.length; i += 2) out.set(String(pairs[i]), Number(pairs[i + 1]));
      else if (pairs && typeof pairs === "object") for (const [k, v] of Object.entries(pairs)) out.set(k, Number(v));
    } while (cursor !== "0");
    return out;
  }
}

/** The field names of an HSCAN page: a flat [field, value, ...] list (RESP2, and RESP3 as node-redis gives it) or a map. */
function fieldsOf(page: unknown): string[] {
  if (Array.isArray(page)) return page.filter((_, i) => i % 2 === 0).map(String);
  if (page && typeof page === "object") return Object.keys(page);
  return [];
}
