/**
 * The delivery store of one gateway: a SQLite file (WAL), written by this
 * process only. Calls made in one event-loop turn run in one transaction
 * at the turn's end and are answered in order, so a burst of messages costs
 * one commit, and a read sees every write made before it.
 *
 * A commit reaches the file before the promise of its calls settles, and
 * the write-ahead log survives the process being killed (`kill -9`); with
 * `synchronous = NORMAL` it does not wait for the disk itself, so a power
 * cut may take the last commits.
 * @module
 */
import { Buffer } from "node:buffer";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { Runtime, Sqlite } from "../runtime/types.ts";
import type { DeliveryStore, InboxInfo, InboxLimits, StoredMessage, StoreFailure } from "./store.ts";

/** A user's row, kept in memory too: this process is the file's only writer. */
interface UserState {
  lastSeq: number;
  acked: number;
  depth: number;
  bytes: number;
  announced: boolean;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL DEFAULT 0,
  acked INTEGER NOT NULL DEFAULT 0,
  depth INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  announced INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  user TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT,
  bytes INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_age ON messages (stored_at);
`;

/** A call waiting for the turn's transaction: its work, and how its promise settles once the transaction is done. */
interface Job {
  work(): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class SqliteDeliveryStore implements DeliveryStore {
  readonly kind = "sqlite";
  #users = new Map<string, UserState | null>();
  /** Users whose row changed in this transaction: written once, at its end. */
  #dirty = new Set<string>();
  #jobs: Job[] = [];
  #scheduled = false;
  #total = 0;
  #closed = false;
  #failure: string | undefined;

  constructor(
    private readonly db: Sqlite,
    private readonly path: string,
    private readonly limits: () => InboxLimits,
  ) {
    this.#total = this.#countStored();
  }

  #countStored(): number {
    try {
      return Number(this.db.get<{ n: number | null }>("SELECT SUM(depth) AS n FROM users")?.n ?? 0);
    } catch {
      return 0;
    }
  }

  /** Runs `work` in the turn's transaction; its result (or throw) settles the promise. */
  #enqueue<T>(work: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error("the delivery store is closed"));
    return new Promise<T>((resolve, reject) => {
      this.#jobs.push({ work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#runTurn());
      }
    });
  }

  #runTurn(): void {
    this.#scheduled = false;
    const jobs = this.#jobs;
    this.#jobs = [];
    if (jobs.length === 0) return;
    // Each call's answer is given only once the transaction is committed: a message is stored before anyone hears so.
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.exec("BEGIN IMMEDIATE");
      for (const job of jobs) {
        try {
          results.push({ ok: true, value: job.work() });
        } catch (err) {
          results.push({ ok: false, value: err });
        }
      }
      for (const user of this.#dirty) this.#write(user, this.#users.get(user)!);
      this.#dirty.clear();
      this.db.exec("COMMIT");
      this.#failure = undefined;
    } catch (err) {
      this.#failure = (err as Error).message;
      try {
        this.db.exec("ROLLBACK");
      } catch {
        // nothing to roll back
      }
      // What is in memory may be ahead of the file now: read it again.
      this.#users.clear();
      this.#dirty.clear();
      this.#total = this.#countStored();
      const failed = new Error(`delivery store ${this.path}: ${this.#failure}`, { cause: err });
      for (const job of jobs) job.reject(failed);
      return;
    }
    jobs.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.value);
      else job.reject(r.value);
    });
  }

  #state(user: string): UserState | undefined {
    let state = this.#users.get(user);
    if (state === undefined) {
      const row = this.db.get<{ last_seq: number; acked: number; depth: number; bytes: number; announced: number }>(
        "SELECT last_seq, acked, depth, bytes, announced FROM users WHERE name = ?",
        user,
      );
      state = row === undefined ? null : { lastSeq: row.last_seq, acked: row.acked, depth: row.depth, bytes: row.bytes, announced: row.announced === 1 };
      this.#users.set(user, state);
    }
    return state ?? undefined;
  }

  #create(user: string): UserState {
    const state: UserState = { lastSeq: 0, acked: 0, depth: 0, bytes: 0, announced: false };
    this.db.run("INSERT OR IGNORE INTO users (name) VALUES (?)", user);
    this.#users.set(user, state);
    return state;
  }

  /** The user's row changed: written at the end of the transaction (a burst to one user writes it once). */
  #save(user: string, _s: UserState): void {
    this.#dirty.add(user);
  }

  #write(user: string, s: UserState): void {
    this.db.run(
      "UPDATE users SET last_seq = ?, acked = ?, depth = ?, bytes = ?, announced = ? WHERE name = ?",
      s.lastSeq,
      s.acked,
      s.depth,
      s.bytes,
      s.announced ? 1 : 0,
      user,
    );
  }

  /** Deletes the stored messages of `user` up to `seq` and takes them off its counts. */
  #deleteUpTo(user: string, s: UserState, seq: number): void {
    if (s.depth === 0) return;
    const gone = this.db.get<{ n: number; b: number | null }>(
      "SELECT COUNT(*) AS n, SUM(bytes) AS b FROM messages WHERE user = ? AND seq <= ?",
      user,
      seq,
    );
    const n = Number(gone?.n ?? 0);
    if (n === 0) return;
    this.db.run("DELETE FROM messages WHERE user = ? AND seq <= ?", user, seq);
    s.depth -= n;
    s.bytes -= Number(gone?.b ?? 0);
    this.#total -= n;
  }

  append(user: string, type: string, data: string | undefined, keep: boolean): Promise<{ ok: true; seq: number } | StoreFailure> {
    return this.#enqueue(() => {
      const s = this.#state(user) ?? this.#create(user);
      if (keep) {
        const limits = this.limits();
        const bytes = data === undefined ? 0 : Buffer.byteLength(data, "utf8");
        if (s.depth + 1 > limits.maxMessages) {
          return full(user, `${s.depth} messages wait already, the limit is ${limits.maxMessages}`);
        }
        if (s.bytes + bytes > limits.maxBytes) {
          return full(user, `${s.bytes} bytes wait already, and this message adds ${bytes}; the limit is ${limits.maxBytes}`);
        }
        s.lastSeq++;
        this.db.run(
          "INSERT INTO messages (user, seq, type, data, bytes, stored_at) VALUES (?, ?, ?, ?, ?, ?)",
          user,
          s.lastSeq,
          type,
          data ?? null,
          bytes,
          Date.now(),
        );
        s.depth++;
        s.bytes += bytes;
        this.#total++;
      } else {
        s.lastSeq++;
      }
      this.#save(user, s);
      return { ok: true as const, seq: s.lastSeq };
    });
  }

  read(user: string, after: number, limit: number): Promise<StoredMessage[]> {
    return this.#enqueue(() =>
      this.db
        .all<{ seq: number; type: string; data: string | null; stored_at: number }>(
          "SELECT seq, type, data, stored_at FROM messages WHERE user = ? AND seq > ? ORDER BY seq LIMIT ?",
          user,
          after,
          limit,
        )
        .map((r) => ({ seq: r.seq, type: r.type, data: r.data ?? undefined, storedAt: r.stored_at })),
    );
  }

  ack(user: string, seq: number): Promise<{ ok: true } | StoreFailure> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      const last = s?.lastSeq ?? 0;
      if (s === undefined || seq > last) {
        return { ok: false as const, code: "bad_ack" as const, message: `seq ${seq} was never sent to ${user}: the last one sent is ${last}` };
      }
      if (seq <= s.acked) return { ok: true as const };
      s.acked = seq;
      this.#deleteUpTo(user, s, seq);
      this.#save(user, s);
      return { ok: true as const };
    });
  }

  drop(user: string, seq: number): Promise<void> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined) return;
      this.#deleteUpTo(user, s, seq);
      this.#save(user, s);
    });
  }

  login(user: string, ack: boolean): Promise<{ acked: number; reset: boolean }> {
    return this.#enqueue(() => {
      const s = this.#state(user) ?? this.#create(user);
      const reset = ack && !s.announced;
      if (reset) {
        s.announced = true;
        this.#save(user, s);
      }
      return { acked: s.acked, reset };
    });
  }

  knows(user: string): Promise<boolean> {
    return this.#enqueue(() => this.#state(user) !== undefined);
  }

  inbox(user: string): Promise<InboxInfo | undefined> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined) return undefined;
      const oldest = this.db.get<{ t: number | null }>("SELECT MIN(stored_at) AS t FROM messages WHERE user = ?", user);
      return { username: user, depth: s.depth, bytes: s.bytes, oldest: oldest?.t ?? undefined, lastSeq: s.lastSeq, acked: s.acked };
    });
  }

  clear(user: string): Promise<number> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined || s.depth === 0) return 0;
      const n = s.depth;
      this.db.run("DELETE FROM messages WHERE user = ?", user);
      this.#total -= n;
      s.depth = 0;
      s.bytes = 0;
      this.#save(user, s);
      return n;
    });
  }

  expire(before: number): Promise<Array<{ user: string; count: number }>> {
    return this.#enqueue(() => {
      const rows = this.db.all<{ user: string; n: number; b: number }>(
        "SELECT user, COUNT(*) AS n, SUM(bytes) AS b FROM messages WHERE stored_at < ? GROUP BY user",
        before,
      );
      if (rows.length === 0) return [];
      this.db.run("DELETE FROM messages WHERE stored_at < ?", before);
      for (const r of rows) {
        const s = this.#state(r.user);
        if (s === undefined) continue;
        s.depth -= r.n;
        s.bytes -= r.b;
        this.#total -= r.n;
        this.#save(r.user, s);
      }
      return rows.map((r) => ({ user: r.user, count: r.n }));
    });
  }

  depth(): Promise<number> {
    return Promise.resolve(this.#total);
  }

  largest(limit: number): Promise<InboxInfo[]> {
    return this.#enqueue(() =>
      this.db
        .all<{ name: string; depth: number; bytes: number; last_seq: number; acked: number; oldest: number | null }>(
          `SELECT name, depth, bytes, last_seq, acked, (SELECT MIN(stored_at) FROM messages WHERE user = name) AS oldest
           FROM users WHERE depth > 0 ORDER BY depth DESC, name LIMIT ?`,
          limit,
        )
        .map((r) => ({ username: r.name, depth: r.depth, bytes: r.bytes, oldest: r.oldest ?? undefined, lastSeq: r.last_seq, acked: r.acked })),
    );
  }

  health(): { ok: boolean; detail: string } {
    if (this.#closed) return { ok: false, detail: "closed" };
    if (this.#failure !== undefined) return { ok: false, detail: `sqlite ${this.path}: ${this.#failure}` };
    return { ok: true, detail: `sqlite ${this.path}` };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // What is queued still commits.
    if (this.#jobs.length > 0) this.#runTurn();
    this.#closed = true;
    this.db.close();
  }
}

function full(user: string, why: string): StoreFailure {
  return { ok: false, code: "inbox_full", message: `the inbox of ${user} is full: ${why}` };
}

/**
 * Opens (creating) the store's file. The file is locked for this process
 * alone: a second gateway given the same file is refused at start.
 */
export async function openSqliteDeliveryStore(runtime: Runtime, path: string, limits: () => InboxLimits): Promise<SqliteDeliveryStore> {
  // The state folder may not exist yet (a first start): made private, since messages are kept in it.
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const db = await runtime.openSqlite(path);
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(SCHEMA);
    // Takes the exclusive lock now, not at the first message.
    db.exec("BEGIN IMMEDIATE");
    db.exec("COMMIT");
  } catch (err) {
    db.close();
    const message = (err as Error).message;
    if (/locked|busy/i.test(message)) throw new Error(`delivery store ${path} is in use by another gateway`, { cause: err });
    throw new Error(`delivery store ${path}: ${message}`, { cause: err });
  }
  return new SqliteDeliveryStore(db, path, limits);
}
