/**
 * The delivery store of one gateway: a SQLite file (WAL), written by this
 * process only. Calls made in one event-loop turn run in one transaction
 * at the turn's end and are answered in order, so a burst of messages costs
 * one commit, and a read sees every write made before it.
 *
 * The messages one user is sent in one transaction are kept as one row, a
 * run (see `decodeRun`): a burst to a user is one insert and one delete,
 * however many messages it holds. A cumulative ack or drop ends inside a run
 * at most once per user; the run stays until its last message is done, and
 * the user's `done` seq says which of its messages no longer count.
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
import { DELIVERY_WAL_CHECKPOINT_PAGES } from "../config/defaults.ts";
import type { Runtime, Sqlite } from "../runtime/types.ts";
import type { DeliveryStore, InboxInfo, InboxLimits, StoredMessage, StoreFailure } from "./store.ts";

/** A user's row, kept in memory too: this process is the file's only writer. */
interface UserState {
  lastSeq: number;
  acked: number;
  /** Every stored message up to this seq is done (acknowledged, dropped or cleared); a run may still hold some of them. */
  done: number;
  depth: number;
  bytes: number;
  announced: boolean;
}

/** The messages appended to one user in this transaction, written as one row at its end (or before a call that reads them). */
interface PendingRun {
  first: number;
  last: number;
  count: number;
  bytes: number;
  storedAt: number;
  /** Per message: seq, type length, data length (-1: none), data bytes; comma-separated, each followed by a comma. */
  head: string;
  /** The types and data, one after another. */
  text: string;
}

/** Schema version 2: messages kept in runs. Version 1 (one row per message) is converted at open. */
const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL DEFAULT 0,
  acked INTEGER NOT NULL DEFAULT 0,
  depth INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  announced INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
  user TEXT NOT NULL,
  last INTEGER NOT NULL,
  first INTEGER NOT NULL,
  count INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  head TEXT NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (user, last)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_age ON runs (stored_at);
`;

/**
 * A run is stored as a head of four numbers per message (seq, type length,
 * data length or -1 for none, data's UTF-8 bytes), and a body: each
 * message's type and data text, one after another. Lengths are in UTF-16
 * code units, as the texts are sliced back. Data is stored as the text it
 * came as: parsing and serialising it again could change it (large numbers,
 * escapes). An ack ending inside a run reads only its head.
 */
interface RunMessage {
  seq: number;
  type: string;
  data: string | undefined;
  bytes: number;
}

/** The head's numbers: four per message. */
function numbersOf(head: string): number[] {
  // Read by hand: an ack ending inside a run reads its head, and split() would make a string per number.
  const out: number[] = [];
  let n = 0;
  let negative = false;
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i);
    if (c === 44 /* , */) {
      out.push(negative ? -n : n);
      n = 0;
      negative = false;
    } else if (c === 45 /* - */) negative = true;
    else n = n * 10 + (c - 48);
  }
  return out;
}

function decodeRun(head: string, body: string): RunMessage[] {
  const nums = numbersOf(head);
  const out: RunMessage[] = [];
  let at = 0;
  for (let i = 0; i + 3 < nums.length; i += 4) {
    const typeLength = nums[i + 1]!;
    const dataLength = nums[i + 2]!;
    const type = body.slice(at, (at += typeLength));
    const data = dataLength < 0 ? undefined : body.slice(at, (at += dataLength));
    out.push({ seq: nums[i]!, type, data, bytes: nums[i + 3]! });
  }
  return out;
}

/** A run's row, with its head when the caller needs its messages one by one. */
interface RunRow {
  first: number;
  last: number;
  count: number;
  bytes: number;
  head: string | null;
}

/** The count and bytes of a run's messages with a seq in (after, upTo]. */
function partOf(run: RunRow, after: number, upTo: number): { n: number; b: number } {
  if (run.first > after && run.last <= upTo) return { n: run.count, b: run.bytes };
  let n = 0;
  let b = 0;
  const nums = numbersOf(run.head!);
  for (let i = 0; i + 3 < nums.length; i += 4) {
    const seq = nums[i]!;
    if (seq > after && seq <= upTo) {
      n++;
      b += nums[i + 3]!;
    }
  }
  return { n, b };
}

/** A call waiting for the turn's transaction: its work, and how its promise settles once the transaction is done. */
interface Job {
  work(): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * How many users' rows stay in memory between transactions (absent ones
 * included). Past it the oldest-read are forgotten and read from the file
 * when next needed: otherwise every user that ever logged in would stay, and
 * a login reads its user's row to replay what waits.
 */
export const CACHED_USERS = 4096;

export class SqliteDeliveryStore implements DeliveryStore {
  readonly kind = "sqlite";
  /** Rows read in this process, oldest read first; a transaction's writes are in the file once it commits. */
  #users = new Map<string, UserState | null>();
  /** Users whose row changed in this transaction: written once, at its end. */
  #dirty = new Set<string>();
  /** Messages appended in this transaction, per user, not yet written. */
  #runs = new Map<string, PendingRun>();
  #jobs: Job[] = [];
  #scheduled = false;
  #total = 0;
  #closed = false;
  #failure: string | undefined;

  constructor(
    private readonly db: Sqlite,
    private readonly path: string,
    private readonly limits: () => InboxLimits,
    private readonly cachedUsers = CACHED_USERS,
  ) {
    this.#total = this.#countStored();
  }

  /** Users whose row is held in memory now (at most the bound after each transaction). */
  get cachedUserCount(): number {
    return this.#users.size;
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
      this.#writeRuns();
      this.#writeUsers();
      this.db.exec("COMMIT");
      this.#failure = undefined;
      this.#forgetOldest();
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
      this.#runs.clear();
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

  /**
   * Only after a commit: nothing is dirty or pending then, so a forgotten row
   * is exactly what the file holds. Down to three quarters of the bound, so
   * this runs once per thousand or so new users, not on every one.
   */
  #forgetOldest(): void {
    if (this.#users.size <= this.cachedUsers) return;
    let over = this.#users.size - Math.floor((this.cachedUsers * 3) / 4);
    for (const user of this.#users.keys()) {
      if (over-- <= 0) break;
      this.#users.delete(user);
    }
  }

  #state(user: string): UserState | undefined {
    let state = this.#users.get(user);
    if (state === undefined) {
      const row = this.db.get<{ last_seq: number; acked: number; done: number; depth: number; bytes: number; announced: number }>(
        "SELECT last_seq, acked, done, depth, bytes, announced FROM users WHERE name = ?",
        user,
      );
      state =
        row === undefined
          ? null
          : { lastSeq: row.last_seq, acked: row.acked, done: row.done, depth: row.depth, bytes: row.bytes, announced: row.announced === 1 };
      this.#users.set(user, state);
    }
    return state ?? undefined;
  }

  #create(user: string): UserState {
    const state: UserState = { lastSeq: 0, acked: 0, done: 0, depth: 0, bytes: 0, announced: false };
    this.db.run("INSERT OR IGNORE INTO users (name) VALUES (?)", user);
    this.#users.set(user, state);
    return state;
  }

  /** The user's row changed: written at the end of the transaction (a burst to one user writes it once). */
  #save(user: string, _s: UserState): void {
    this.#dirty.add(user);
  }

  #writeUsers(): void {
    for (const user of this.#dirty) {
      const s = this.#users.get(user)!;
      this.db.run(
        "UPDATE users SET last_seq = ?, acked = ?, done = ?, depth = ?, bytes = ?, announced = ? WHERE name = ?",
        s.lastSeq,
        s.acked,
        s.done,
        s.depth,
        s.bytes,
        s.announced ? 1 : 0,
        user,
      );
    }
    this.#dirty.clear();
  }

  /** Writes the pending run of `user` (every user's when undefined), so that a query sees it. */
  #writeRuns(user?: string): void {
    if (this.#runs.size === 0) return;
    if (user !== undefined) {
      const run = this.#runs.get(user);
      if (run === undefined) return;
      this.#insertRun(user, run);
      this.#runs.delete(user);
      return;
    }
    for (const [u, run] of this.#runs) this.#insertRun(u, run);
    this.#runs.clear();
  }

  #insertRun(user: string, run: PendingRun): void {
    this.db.run(
      "INSERT INTO runs (user, last, first, count, bytes, stored_at, head, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      user,
      run.last,
      run.first,
      run.count,
      run.bytes,
      run.storedAt,
      run.head,
      run.text,
    );
  }

  /** Every stored message of `user` up to `seq` is done: counted off, and the runs it ends are deleted. */
  #removeUpTo(user: string, s: UserState, seq: number): void {
    if (seq <= s.done) return;
    if (s.depth > 0) {
      this.#writeRuns(user);
      // The runs holding a message in (done, seq]: those ending in it, and the one after if it starts in it
      // (two ranges of the key, so no other run is read); the head only of a run partly in it.
      const runs = this.db.all<RunRow>(
        `SELECT first, last, count, bytes, CASE WHEN first <= ? THEN head END AS head FROM runs WHERE user = ? AND last > ? AND last <= ?`,
        s.done,
        user,
        s.done,
        seq,
      );
      const next = this.db.get<RunRow>("SELECT first, last, count, bytes, head FROM runs WHERE user = ? AND last > ? ORDER BY last LIMIT 1", user, seq);
      if (next !== undefined && next.first <= seq) runs.push(next);
      let n = 0;
      let b = 0;
      for (const run of runs) {
        const part = partOf(run, s.done, seq);
        n += part.n;
        b += part.b;
      }
      if (runs.length > 0) this.db.run("DELETE FROM runs WHERE user = ? AND last <= ?", user, seq);
      s.depth -= n;
      s.bytes -= b;
      this.#total -= n;
    }
    s.done = seq;
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
        const seq = ++s.lastSeq;
        const entry = seq + "," + type.length + "," + (data === undefined ? -1 : data.length) + "," + bytes + ",";
        const run = this.#runs.get(user);
        if (run === undefined) {
          this.#runs.set(user, { first: seq, last: seq, count: 1, bytes, storedAt: Date.now(), head: entry, text: type + (data ?? "") });
        } else {
          run.last = seq;
          run.count++;
          run.bytes += bytes;
          run.head += entry;
          run.text += type + (data ?? "");
        }
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
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined || s.depth === 0 || limit < 1) return [];
      this.#writeRuns(user);
      const from = Math.max(after, s.done);
      // Each run holds at least one message: `limit` runs are enough.
      const runs = this.db.all<{ head: string; body: string; stored_at: number }>(
        "SELECT head, body, stored_at FROM runs WHERE user = ? AND last > ? ORDER BY last LIMIT ?",
        user,
        from,
        limit,
      );
      const out: StoredMessage[] = [];
      for (const run of runs) {
        for (const m of decodeRun(run.head, run.body)) {
          if (m.seq <= from) continue;
          out.push({ seq: m.seq, type: m.type, data: m.data, storedAt: run.stored_at });
          if (out.length === limit) return out;
        }
      }
      return out;
    });
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
      this.#removeUpTo(user, s, seq);
      this.#save(user, s);
      return { ok: true as const };
    });
  }

  drop(user: string, seq: number): Promise<void> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined || seq <= s.done) return;
      this.#removeUpTo(user, s, seq);
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
      this.#writeRuns(user);
      const oldest = s.depth === 0 ? undefined : this.db.get<{ t: number | null }>("SELECT MIN(stored_at) AS t FROM runs WHERE user = ?", user);
      return { username: user, depth: s.depth, bytes: s.bytes, oldest: oldest?.t ?? undefined, lastSeq: s.lastSeq, acked: s.acked };
    });
  }

  clear(user: string): Promise<number> {
    return this.#enqueue(() => {
      const s = this.#state(user);
      if (s === undefined || s.depth === 0) return 0;
      const n = s.depth;
      this.#runs.delete(user);
      this.db.run("DELETE FROM runs WHERE user = ?", user);
      this.#total -= n;
      s.depth = 0;
      s.bytes = 0;
      this.#save(user, s);
      return n;
    });
  }

  expire(before: number): Promise<Array<{ user: string; count: number }>> {
    return this.#enqueue(() => {
      this.#writeRuns();
      this.#writeUsers();
      // A run partly done (first <= done) is counted message by message.
      const runs = this.db.all<RunRow & { user: string; done: number }>(
        `SELECT r.user AS user, r.first AS first, r.last AS last, r.count AS count, r.bytes AS bytes, u.done AS done,
                CASE WHEN r.first <= u.done THEN r.head END AS head
         FROM runs r JOIN users u ON u.name = r.user WHERE r.stored_at < ?`,
        before,
      );
      if (runs.length === 0) return [];
      this.db.run("DELETE FROM runs WHERE stored_at < ?", before);
      const gone = new Map<string, { n: number; b: number }>();
      for (const run of runs) {
        const part = partOf(run, run.done, Infinity);
        const sum = gone.get(run.user) ?? { n: 0, b: 0 };
        sum.n += part.n;
        sum.b += part.b;
        gone.set(run.user, sum);
      }
      const out: Array<{ user: string; count: number }> = [];
      for (const [user, { n, b }] of gone) {
        const s = this.#state(user);
        if (s === undefined || n === 0) continue;
        s.depth -= n;
        s.bytes -= b;
        this.#total -= n;
        this.#save(user, s);
        out.push({ user, count: n });
      }
      return out;
    });
  }

  depth(): Promise<number> {
    return Promise.resolve(this.#total);
  }

  largest(limit: number): Promise<InboxInfo[]> {
    return this.#enqueue(() => {
      this.#writeRuns();
      this.#writeUsers();
      return this.db
        .all<{ name: string; depth: number; bytes: number; last_seq: number; acked: number; oldest: number | null }>(
          `SELECT name, depth, bytes, last_seq, acked, (SELECT MIN(stored_at) FROM runs WHERE user = name) AS oldest
           FROM users WHERE depth > 0 ORDER BY depth DESC, name LIMIT ?`,
          limit,
        )
        .map((r) => ({ username: r.name, depth: r.depth, bytes: r.bytes, oldest: r.oldest ?? undefined, lastSeq: r.last_seq, acked: r.acked }));
    });
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

/** Brings a file of any earlier schema to SCHEMA_VERSION (inside the caller's transaction). */
function migrate(db: Sqlite): void {
  const version = Number(db.get<{ user_version: number }>("PRAGMA user_version")?.user_version ?? 0);
  if (version >= SCHEMA_VERSION) return;
  const v1 = db.get("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'messages'") !== undefined;
  if (v1 && db.all<{ name: string }>("PRAGMA table_info(users)").every((c) => c.name !== "done")) {
    db.exec("ALTER TABLE users ADD COLUMN done INTEGER NOT NULL DEFAULT 0");
  }
  db.exec(SCHEMA);
  if (v1) {
    // Each message of version 1 becomes a run of one, in pages so a large file is not read at once.
    let after = { user: "", seq: 0 };
    for (;;) {
      const rows = db.all<{ user: string; seq: number; type: string; data: string | null; bytes: number; stored_at: number }>(
        "SELECT user, seq, type, data, bytes, stored_at FROM messages WHERE (user, seq) > (?, ?) ORDER BY user, seq LIMIT 1000",
        after.user,
        after.seq,
      );
      for (const r of rows) {
        const data = r.data ?? undefined;
        const head = `${r.seq},${r.type.length},${data === undefined ? -1 : data.length},${r.bytes},`;
        db.run(
          "INSERT INTO runs (user, last, first, count, bytes, stored_at, head, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          r.user,
          r.seq,
          r.seq,
          1,
          r.bytes,
          r.stored_at,
          head,
          r.type + (data ?? ""),
        );
      }
      if (rows.length < 1000) break;
      after = rows.at(-1)!;
    }
    db.exec("DROP TABLE messages");
  }
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
}

function full(user: string, why: string): StoreFailure {
  return { ok: false, code: "inbox_full", message: `the inbox of ${user} is full: ${why}` };
}

/**
 * Opens (creating) the store's file. The file is locked for this process
 * alone: a second gateway given the same file is refused at start.
 */
export async function openSqliteDeliveryStore(
  runtime: Runtime,
  path: string,
  limits: () => InboxLimits,
  cachedUsers = CACHED_USERS,
): Promise<SqliteDeliveryStore> {
  // The state folder may not exist yet (a first start): made private, since messages are kept in it.
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const db = await runtime.openSqlite(path);
  try {
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(`PRAGMA wal_autocheckpoint = ${DELIVERY_WAL_CHECKPOINT_PAGES}`);
    // Also takes the exclusive lock now, not at the first message.
    db.exec("BEGIN IMMEDIATE");
    try {
      migrate(db);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  } catch (err) {
    db.close();
    const message = (err as Error).message;
    if (/locked|busy/i.test(message)) throw new Error(`delivery store ${path} is in use by another gateway`, { cause: err });
    throw new Error(`delivery store ${path}: ${message}`, { cause: err });
  }
  return new SqliteDeliveryStore(db, path, limits, cachedUsers);
}
