/**
 * SQLite on Deno through `node:sqlite` (built into Deno 2.2+), imported
 * inside `openSqlite` so that Bun, which loads only runtime/bun.ts, never
 * resolves it.
 * @module
 */
import type { Sqlite, SqlValue } from "./types.ts";

export async function openSqlite(path: string): Promise<Sqlite> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(path);
  // node:sqlite has no statement cache of its own; the stores reuse a handful of SQL texts.
  const statements = new Map<string, ReturnType<typeof db.prepare>>();
  const prepare = (sql: string) => {
    let stmt = statements.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare(sql);
      statements.set(sql, stmt);
    }
    return stmt;
  };
  return {
    exec: (sql) => db.exec(sql),
    run(sql, ...params: SqlValue[]) {
      const { changes } = prepare(sql).run(...params);
      return { changes: Number(changes) };
    },
    get: <T>(sql: string, ...params: SqlValue[]) => prepare(sql).get(...params) as T | undefined,
    all: <T>(sql: string, ...params: SqlValue[]) => prepare(sql).all(...params) as T[],
    close() {
      statements.clear();
      db.close();
    },
  };
}
