/**
 * Opens the account store the config's `database` block names. The sqlite
 * and redis stores are loaded only when chosen, so an `open` gateway never
 * loads the Redis client.
 * @module
 */
import { readNamedFile } from "../config/named-file.ts";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Runtime } from "../runtime/types.ts";
import { OpenAccountStore } from "./open.ts";
import type { AccountStore } from "./store.ts";

export type { AccountStore, VerifyFailure, VerifyResult } from "./store.ts";
export { checkUsername, MAX_USERNAME_CHARS } from "./store.ts";
export { OPEN_STORE_KEEPS_NO_ACCOUNTS } from "./open.ts";

export async function openAccountStore(runtime: Runtime, database: Config["database"], log?: Logger): Promise<AccountStore> {
  switch (database.type) {
    case "open":
      return new OpenAccountStore();
    case "sqlite":
      return (await import("./sqlite.ts")).openSqliteStore(runtime, database.sqlite.path, log);
    case "redis": {
      const { address, port, prefix, username, tls, caFile } = database.redis;
      // An empty variable is no password, as if it were unset.
      const password = database.redis.password ?? (process.env.BESTER_REDIS_PASSWORD || undefined);
      const ca = caFile === undefined ? undefined : readNamedFile("database.redis.caFile", caFile);
      return (await import("./redis.ts")).openRedisStore({
        host: address,
        port,
        prefix,
        log,
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(tls ? { tls: ca === undefined ? {} : { ca } } : {}),
      });
    }
  }
}
