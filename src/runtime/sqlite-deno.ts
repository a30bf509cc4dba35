import type { Sqlite } from "./types.ts";

export async function openSqlite(_path: string): Promise<Sqlite> {
  throw new Error("SQLite support is being written");
}
