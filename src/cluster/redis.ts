/**
 * The cluster's own Redis connection (the delivery store's Redis): commands
 * and sharded pub/sub on one connection for one server (RESP3), or the
 * cluster client, which keeps a pub/sub connection per shard.
 * @module
 */
import { ErrorReply } from "redis";
import type { Logger } from "../log/logger.ts";
import {
  type RedisClient,
  type RedisCluster,
  RedisConnection,
  type RedisConnectionOptions,
  type RedisEndpoint,
} from "../redis/connection.ts";
import type { Script } from "../redis/script.ts";
import { CLUSTER_SCRIPTS } from "./scripts.ts";

const ROLE = {
  name: "cluster",
  unavailable: (detail: string) => `cluster: redis unavailable: ${detail}`,
  note: "local users are served; what needs another node or the store gets 'store_unavailable' until it is back",
};

export type Listener = (message: string, channel: string) => void;

export class ClusterRedis {
  readonly conn: RedisConnection<RedisClient> | RedisConnection<RedisCluster>;

  constructor(options: RedisConnectionOptions & { cluster?: boolean; nodes?: RedisEndpoint[] }, log: Logger) {
    this.conn = options.cluster
      ? RedisConnection.cluster({ ...options, log }, ROLE, options.nodes)
      : RedisConnection.single({ ...options, log, resp3: true }, ROLE);
    this.conn.onNodeReady((client) => {
      for (const s of Object.values(CLUSTER_SCRIPTS)) client.sendCommand(["SCRIPT", "LOAD", s.text]).catch(() => {});
    });
  }

  /** A raw command, sent to the node that holds `key`. */
  send(key: string, args: string[]): Promise<unknown> {
    return this.conn.run((c) => (this.conn.cluster ? (c as RedisCluster).sendCommand(key, false, args) : (c as RedisClient).sendCommand(args)));
  }

  /** EVALSHA, or EVAL when the node lost the script (a restart, a failover). */
  async eval(script: Script, keys: string[], args: Array<string | number>): Promise<unknown> {
    const rest = [String(keys.length), ...keys, ...args.map(String)];
    try {
      return await this.send(keys[0]!, ["EVALSHA", script.sha, ...rest]);
    } catch (err) {
      if (!(err instanceof ErrorReply && err.message.startsWith("NOSCRIPT"))) throw err;
      return this.send(keys[0]!, ["EVAL", script.text, ...rest]);
    }
  }

  subscribe(channel: string, listener: Listener): Promise<void> {
    return this.conn.client.sSubscribe(channel, listener);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.conn.client.sUnsubscribe(channel);
  }

  health(): { ok: boolean; detail: string } {
    return this.conn.health();
  }

  firstAttempt(ms: number): Promise<void> {
    return this.conn.firstAttempt(ms);
  }

  close(): void {
    this.conn.close();
  }
}
