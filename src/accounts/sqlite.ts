/**
 * The `sqlite` store: one table in a local SQLite file, passwords as scrypt
 * records. Needs no server; the file is created on first use.
 * @module
 */
import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../log/logger.ts";
import type { Runtime, Sqlite } from "../runtime/types.ts";
import { checkStoredPassword, hashPassword, verifyAgainstDummy } from "./hash.ts";
import { type AccountStore, checkUsername, requireValidAccount, unavailableMessage, type VerifyResult } from "./store.ts";

/** How long a write waits for another process (a running gateway, `bester passwd`) holding the file's lock. */
const BUSY_TIMEOUT_MS = 5000;

const SCHEMA = `CREATE TABLE IF NOT EXISTS accounts (
  username   TEXT PRIMARY KEY,
  password   TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
)`;

export async function openSqliteStore(runtime: Runtime, path: string, log?: Logger): Promise<SqliteAccountStore> {
  let db: Sqlite;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // Create the file ourselves so it is private from the start; SQLite would use the umask.
    if (!existsSync(path)) closeSync(openSync(path, "a", 0o600));
    db = await runtime.openSqlite(path);
  } catch (err) {
    throw new Error(`cannot open the sqlite account store ${path}: ${(err as Error).message}`);
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec(SCHEMA);
  } catch (err) {
    db.close();
    // e.g. "file is not a database" when the path names some other file.
    throw new Error(`cannot open the sqlite account store ${path}: ${(err as Error).message}`);
  }
  log?.info("account store opened", { store: "sqlite", path });
  return new SqliteAccountStore(db, path, log);
}

export class SqliteAccountStore implements AccountStore {
  readonly kind = "sqlite";
  #closed = false;
  #lastError: string | undefined;

  constructor(
    readonly db: Sqlite,
    readonly path: string,
    readonly log?: Logger,
  ) {}

  async verify(username: string, password: string): Promise<VerifyResult> {
    const checked = checkUsername(username);
    if (!checked.ok) return { ok: false, reason: "unknown_user", message: checked.problem };
    let row: { password: string } | undefined;
    try {
      row = this.#use((db) => db.get<{ password: string }>("SELECT password FROM accounts WHERE username = ?", checked.username));
    } catch (err) {
      return { ok: false, reason: "unavailable", message: (err as Error).message };
    }
    if (row === undefined) {
      await verifyAgainstDummy(password);
      return { ok: false, reason: "unknown_user", message: `no account named ${JSON.stringify(checked.username)}` };
    }
    return checkStoredPassword(checked.username, password, row.password, this.log);
  }

  async setPassword(username: string, password: string): Promise<void> {
    const name = requireValidAccount(username, password);
    const record = await hashPassword(password);
    const now = new Date().toISOString();
    this.#use((db) =>
      db.run(
        `INSERT INTO accounts (username, password, created_at, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (username) DO UPDATE SET password = excluded.password, updated_at = excluded.updated_at`,
        name,
        record,
        now,
        now,
      ),
    );
  }

  async remove(username: string): Promise<boolean> {
    const checked = checkUsername(username);
    if (!checked.ok) return false;
    return this.#use((db) => db.run("DELETE FROM accounts WHERE username = ?", checked.username)).changes > 0;
  }

  async has(username: string): Promise<boolean> {
    const checked = checkUsername(username);
    if (!checked.ok) return false;
    return this.#use((db) => db.get("SELECT 1 AS found FROM accounts WHERE username = ?", checked.username)) !== undefined;
  }

  async list(): Promise<string[]> {
    const rows = this.#use((db) => db.all<{ username: string }>("SELECT username FROM accounts"));
    // Sorted here rather than by SQL so every store orders names the same way (UTF-16 code units).
    return rows.map((r) => r.username).sort();
  }

  health() {
    if (this.#closed) return { ok: false, detail: "closed" };
    if (this.#lastError !== undefined) return { ok: false, detail: this.#lastError };
    return { ok: true, detail: `sqlite ${this.path}` };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }

  /** Runs one statement; a failure (locked past the busy timeout, disk error) is remembered for health(). */
  #use<T>(fn: (db: Sqlite) => T): T {
    if (this.#closed) throw new Error(unavailableMessage(`sqlite ${this.path} is closed`));
    try {
      const result = fn(this.db);
      this.#lastError = undefined;
      return result;
    } catch (err) {
      this.#lastError = `sqlite ${this.path}: ${(err as Error).message}`;
      throw new Error(unavailableMessage(this.#lastError));
    }
  }
}
