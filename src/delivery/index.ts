/**
 * Opens the delivery store `delivery.store` names: the SQLite file of one
 * gateway, or Redis (one server or a cluster); none for `none`. Each is
 * loaded only when chosen.
 * @module
 */
import type { DeliveryConfig } from "../config/schema.ts";
import type { Logger } from "../log/logger.ts";
import type { Runtime } from "../runtime/types.ts";
import type { DeliveryStore, InboxLimits } from "./store.ts";

export type { DeliveryStore, InboxInfo, InboxLimits, StoredMessage, StoreFailure } from "./store.ts";

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
    case "redis":
      throw new Error("delivery.store redis: not available in this build yet");
  }
}
