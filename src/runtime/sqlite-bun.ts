/**
 * SQLite on Bun through `bun:sqlite`, imported inside `openSqlite` so that
 * Deno never resolves the specifier (runtime/bun.ts is only loaded on Bun).
 * @module
 */
import type { Sqlite, SqlValue } from "./types.ts";

export async function openSqlite(path: string): Promise<Sqlite> {
  const { Database } = await import("bun:sqlite");
  // No options: Bun's default flags are read-write plus create, which is what the interface promises.
  const db = new Database(path);
  return {
    exec: (sql) => void db.exec(sql),
    run(sql, ...params: SqlValue[]) {
      // db.query caches the prepared statement per SQL text.
      const { changes } = db.query(sql).run(...params);
      return { changes: Number(changes) };
    },
    get<T>(sql: string, ...params: SqlValue[]) {
      // bun:sqlite answers null for "no row"; the interface says undefined.
      return (db.query(sql).get(...params) ?? undefined) as T | undefined;
    },
    all: <T>(sql: string, ...params: SqlValue[]) => db.query(sql).all(...params) as T[],
    close: () => db.close(),
  };
}
