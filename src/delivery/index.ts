/**
 * Opens the delivery store `delivery.store` names: the SQLite file of one
 * gateway, or Redis (one server or a cluster); none for `none`. Each is
 * loaded only when chosen.
 * @module
 */
import type { DeliveryConfig } from "../config/types.ts";
import { readNamedFile } from "../config/named-file.ts";
import type { Logger } from "../log/logger.ts";
import type { RedisConnectionOptions } from "../redis/connection.ts";
import type { Runtime } from "../runtime/types.ts";
import type { DeliveryStore, InboxLimits } from "./store.ts";

export type { DeliveryStore, InboxInfo, InboxLimits, StoredMessage, StoreFailure } from "./store.ts";

/** How to reach `delivery.redis` (the cluster's nodes use the same Redis). */
export function deliveryRedisOptions(delivery: DeliveryConfig): RedisConnectionOptions & { cluster: boolean } {
  const r = delivery.redis;
  // An empty variable is no password, as if it were unset.
  const password = r.password ?? (process.env.BESTER_REDIS_PASSWORD || undefined);
  const ca = r.caFile === undefined ? undefined : readNamedFile("delivery.redis.caFile", r.caFile);
  return {
    host: r.address,
    port: r.port,
    cluster: r.cluster,
    ...(r.username === undefined ? {} : { username: r.username }),
    ...(password === undefined ? {} : { password }),
    ...(r.tls ? { tls: ca === undefined ? {} : { ca } } : {}),
  };
}

export async function openDeliveryStore(
  runtime: Runtime,
  delivery: DeliveryConfig,
  limits: () => InboxLimits,
  log: Logger,
): Promise<DeliveryStore | undefined> {
  switch (delivery.store) {
    case "none":
      return undefined;
    case "sqlite": {
      const store = await (await import("./sqlite.ts")).openSqliteDeliveryStore(runtime, delivery.sqlite.path, limits);
      log.info("delivery store opened", { store: "sqlite", path: delivery.sqlite.path });
      return store;
    }
    case "redis": {
      const r = delivery.redis;
      const store = await (await import("./redis.ts")).openRedisDeliveryStore({ ...deliveryRedisOptions(delivery), prefix: r.prefix, log }, limits);
      log.info("delivery store opened", { store: "redis", address: `${r.address}:${r.port}`, cluster: r.cluster || undefined, ...store.health() });
      return store;
    }
  }
}
