/**
 * The delivery stores against the real thing: SQLite files through the Bun
 * adapter and a real redis-server, held to one contract (PROTOCOL.md §9):
 * seqs, the inbox and its limits, acknowledgements, logins, expiry.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { Buffer } from "node:buffer";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { INDEX_SHARDS, openRedisDeliveryStore, type RedisDeliveryStoreOptions } from "../../src/delivery/redis.ts";
import { openSqliteDeliveryStore } from "../../src/delivery/sqlite.ts";
import type { DeliveryStore, InboxLimits } from "../../src/delivery/store.ts";
import { createLogger, type Logger } from "../../src/log/logger.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import type { Runtime } from "../../src/runtime/types.ts";
import { startRedisCluster, type RunningRedisCluster } from "../_harness/redis-cluster.ts";
import { freePort, startRedis, type RunningRedis } from "../_harness/redis.ts";

let runtime: Runtime;
const dirs: string[] = [];
beforeAll(async () => {
  runtime = await loadRuntime();
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// One redis-server and one three-master Redis Cluster for the file, started when first needed;
// every store gets a key prefix of its own, so tests do not see each other's users.
let sharedRedis: Promise<RunningRedis> | undefined;
let sharedCluster: Promise<RunningRedisCluster> | undefined;
const redisServer = () => (sharedRedis ??= startRedis());
const redisCluster = () => (sharedCluster ??= startRedisCluster());
afterAll(async () => {
  await Promise.all([sharedRedis?.then((r) => r.stop()), sharedCluster?.then((c) => c.stop())]);
});
let prefixes = 0;
const newPrefix = () => `t${++prefixes}:`;

/** Where a test's Redis store connects: the shared redis-server or the shared cluster. */
async function redisAt(where: "redis" | "cluster"): Promise<Omit<RedisDeliveryStoreOptions, "prefix">> {
  if (where === "redis") return { host: "127.0.0.1", port: (await redisServer()).port };
  return { host: "127.0.0.1", port: (await redisCluster()).ports[0]!, cluster: true };
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "bester-delivery-"));
  dirs.push(dir);
  return dir;
}

const LIMITS: InboxLimits = { maxMessages: 5, maxBytes: 200, maxAgeSeconds: 3600 };

/** An engine as the contract sees it: a fresh store, and the same store opened again (a restart). */
interface Engine {
  open(limits?: InboxLimits): Promise<DeliveryStore>;
  reopen(limits?: InboxLimits): Promise<DeliveryStore>;
}

export function storeContract(name: string, engine: () => Engine) {
  describe(`delivery store: ${name}`, () => {
    let e: Engine;
    let store: DeliveryStore;
    beforeAll(async () => {
      e = engine();
      store = await e.open(LIMITS);
    });
    afterAll(async () => {
      await store?.close();
    });

    test("seqs count from 1 per user, every message that enters the stream takes one, kept or not", async () => {
      expect(await store.append("s1", "chat", '{"n":1}', true)).toEqual({ ok: true, seq: 1 });
      expect(await store.append("s1", "chat", '{"n":2}', false)).toEqual({ ok: true, seq: 2 });
      expect(await store.append("s1", "chat", '{"n":3}', true)).toEqual({ ok: true, seq: 3 });
      expect(await store.append("s2", "chat", "4", true)).toEqual({ ok: true, seq: 1 });
      const read = await store.read("s1", 0, 10);
      expect(read.map((m) => [m.seq, m.type, m.data])).toEqual([
        [1, "chat", '{"n":1}'],
        [3, "chat", '{"n":3}'],
      ]);
      expect(read[0]!.storedAt).toBeGreaterThan(Date.now() - 60_000);
      expect((await store.read("s1", 1, 10)).map((m) => m.seq)).toEqual([3]);
      expect((await store.read("s1", 0, 1)).map((m) => m.seq)).toEqual([1]);
      // Calls of one turn, answered in order: a read sees the append made before it.
      const [appended, seen] = await Promise.all([store.append("s3", "t", undefined, true), store.read("s3", 0, 10)]);
      expect(appended).toEqual({ ok: true, seq: 1 });
      expect(seen).toEqual([{ seq: 1, type: "t", data: undefined, storedAt: seen[0]!.storedAt }]);
    });

    test("acks are cumulative: what is acknowledged is gone; a seq never sent is bad_ack; an old one is fine", async () => {
      for (let i = 0; i < 4; i++) await store.append("a1", "chat", `"m${i}"`, true);
      expect(await store.ack("a1", 2)).toEqual({ ok: true });
      expect((await store.read("a1", 0, 10)).map((m) => m.seq)).toEqual([3, 4]);
      expect(await store.ack("a1", 1)).toEqual({ ok: true });
      const bad = await store.ack("a1", 5);
      expect(bad).toEqual({ ok: false, code: "bad_ack", message: "seq 5 was never sent to a1: the last one sent is 4" });
      expect((await store.ack("nobody", 1)) as { code?: string }).toMatchObject({ ok: false, code: "bad_ack" });
      expect(await store.inbox("a1")).toMatchObject({ username: "a1", depth: 2, lastSeq: 4, acked: 2 });
      // Acknowledging stays acknowledged: a login says so.
      expect((await store.login("a1", true)).acked).toBe(2);
    });

    test("drop: messages written to a session that does not acknowledge are done; acked stays", async () => {
      for (let i = 0; i < 3; i++) await store.append("d1", "chat", `"m${i}"`, true);
      await store.drop("d1", 2);
      expect((await store.read("d1", 0, 10)).map((m) => m.seq)).toEqual([3]);
      expect(await store.inbox("d1")).toMatchObject({ depth: 1, lastSeq: 3, acked: 0 });
    });

    test("limits: past the count or the bytes, inbox_full naming the user; nothing is dropped to make room", async () => {
      for (let i = 1; i <= 5; i++) expect((await store.append("full", "chat", "1", true)).ok).toBe(true);
      const refused = await store.append("full", "chat", "1", true);
      expect(refused).toEqual({ ok: false, code: "inbox_full", message: "the inbox of full is full: 5 messages wait already, the limit is 5" });
      expect((await store.read("full", 0, 10)).length).toBe(5);
      // Not kept: no room needed.
      expect(await store.append("full", "chat", "1", false)).toEqual({ ok: true, seq: 6 });
      const big = "x".repeat(150);
      expect((await store.append("bytes", "chat", JSON.stringify(big), true)).ok).toBe(true);
      const tooBig = await store.append("bytes", "chat", JSON.stringify(big), true);
      expect(tooBig).toMatchObject({ ok: false, code: "inbox_full" });
      expect((tooBig as { message: string }).message).toBe("the inbox of bytes is full: 152 bytes wait already, and this message adds 152; the limit is 200");
      // Bytes are UTF-8 bytes, not characters.
      expect(await store.inbox("bytes")).toMatchObject({ depth: 1, bytes: 152 });
    });

    test("login: remembers the user; an acknowledging login to a stream never announced says reset, once", async () => {
      expect(await store.knows("newcomer")).toBe(false);
      expect(await store.login("newcomer", false)).toEqual({ acked: 0, reset: false });
      expect(await store.knows("newcomer")).toBe(true);
      expect(await store.login("newcomer", true)).toEqual({ acked: 0, reset: true });
      expect(await store.login("newcomer", true)).toEqual({ acked: 0, reset: false });
      // Sent a message: known too.
      await store.append("sent-to", "chat", "1", true);
      expect(await store.knows("sent-to")).toBe(true);
    });

    test("inbox, clear and depth", async () => {
      const before = await store.depth();
      await store.append("c1", "chat", '"a"', true);
      await store.append("c1", "chat", '"bb"', true);
      const info = await store.inbox("c1");
      expect(info).toMatchObject({ username: "c1", depth: 2, bytes: 7, lastSeq: 2, acked: 0 });
      expect(info!.oldest).toBeLessThanOrEqual(Date.now());
      expect(await store.depth()).toBe(before + 2);
      const largest = await store.largest(100);
      expect(largest.find((i) => i.username === "c1")).toMatchObject({ depth: 2, bytes: 7, lastSeq: 2 });
      expect(largest.map((i) => i.depth)).toEqual([...largest.map((i) => i.depth)].sort((a, b) => b - a));
      expect((await store.largest(1)).length).toBe(1);
      expect(await store.clear("c1")).toBe(2);
      expect(await store.clear("c1")).toBe(0);
      expect(await store.inbox("c1")).toMatchObject({ depth: 0, bytes: 0, oldest: undefined, lastSeq: 2 });
      expect(await store.depth()).toBe(before);
      expect(await store.inbox("never-seen")).toBeUndefined();
      // Seqs go on after a clear: never reused.
      expect(await store.append("c1", "chat", "1", true)).toEqual({ ok: true, seq: 3 });
    });

    test("expire: what was stored before the cut is removed and counted per user", async () => {
      await store.append("old1", "chat", "1", true);
      await store.append("old1", "chat", "2", true);
      await store.append("old2", "chat", "3", true);
      const cut = Date.now() + 1;
      const expired = await store.expire(cut);
      expect(expired.filter((x) => x.user === "old1" || x.user === "old2").sort((a, b) => a.user.localeCompare(b.user))).toEqual([
        { user: "old1", count: 2 },
        { user: "old2", count: 1 },
      ]);
      expect(await store.read("old1", 0, 10)).toEqual([]);
      expect(await store.inbox("old1")).toMatchObject({ depth: 0, bytes: 0, lastSeq: 2 });
      expect(await store.depth()).toBe(0);
    });

    test("a restart keeps everything: seqs, messages, acks, who was announced", async () => {
      await store.append("r1", "chat", '"kept"', true);
      await store.append("r1", "chat", '"acked"', true);
      await store.ack("r1", 1);
      await store.login("r1", true);
      await store.close();
      store = await e.reopen(LIMITS);
      expect((await store.read("r1", 0, 10)).map((m) => [m.seq, m.data])).toEqual([[2, '"acked"']]);
      expect(await store.login("r1", true)).toEqual({ acked: 1, reset: false });
      expect(await store.append("r1", "chat", "3", true)).toEqual({ ok: true, seq: 3 });
      expect(await store.depth()).toBe(2);
    });
  });
}

storeContract("sqlite", () => {
  const dir = tempDir();
  const path = join(dir, "delivery.db");
  return {
    open: (limits = LIMITS) => openSqliteDeliveryStore(runtime, path, () => limits),
    reopen: (limits = LIMITS) => openSqliteDeliveryStore(runtime, path, () => limits),
  };
});

for (const where of ["redis", "cluster"] as const) {
  storeContract(where === "redis" ? "redis" : "redis cluster", () => {
    // A restart of the gateway: a new store object on the same Redis and prefix.
    const prefix = newPrefix();
    const open = async (limits = LIMITS) => openRedisDeliveryStore({ ...(await redisAt(where)), prefix }, () => limits);
    return { open, reopen: open };
  });
}

/** The rows of a closed store's file, read with bun:sqlite itself. */
function fileRows<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).all() as T[];
  } finally {
    db.close();
  }
}

describe("delivery store: sqlite only", () => {
  test("what one turn sends a user is one run; an ack or a drop ending inside it counts just what it ends, and the rest survives a restart", async () => {
    const path = join(tempDir(), "delivery.db");
    const limits = { maxMessages: 100, maxBytes: 10_000, maxAgeSeconds: 3600 };
    let store = await openSqliteDeliveryStore(runtime, path, () => limits);
    const sent = await Promise.all([
      store.append("u", "chat", '"a"', true),
      store.append("u", "chat", '"bb"', true),
      store.append("u", "chat", '"skip"', false),
      store.append("u", "chat", '"ccc"', true),
      store.append("u", "chat", '"dddd"', true),
      store.append("v", "chat", '"v1"', true),
    ]);
    expect(sent.map((r) => (r.ok ? r.seq : r.code))).toEqual([1, 2, 3, 4, 5, 1]);
    expect(await store.inbox("u")).toMatchObject({ depth: 4, bytes: 3 + 4 + 5 + 6 });
    await store.ack("u", 2);
    expect(await store.inbox("u")).toMatchObject({ depth: 2, bytes: 5 + 6, acked: 2 });
    expect((await store.read("u", 0, 10)).map((m) => [m.seq, m.data])).toEqual([
      [4, '"ccc"'],
      [5, '"dddd"'],
    ]);
    // Acknowledging again, or below, counts nothing twice.
    await store.ack("u", 3);
    await store.ack("u", 1);
    expect(await store.inbox("u")).toMatchObject({ depth: 2, bytes: 11 });
    await store.drop("u", 4);
    expect((await store.read("u", 0, 10)).map((m) => m.seq)).toEqual([5]);
    expect((await store.read("u", 0, 1)).map((m) => m.seq)).toEqual([5]);
    expect(await store.inbox("u")).toMatchObject({ depth: 1, bytes: 6 });
    expect(await store.depth()).toBe(2);
    await store.close();
    // One row per user for the turn, still there while a message of it waits.
    expect(fileRows<{ user: string; first: number; last: number; count: number }>(path, "SELECT user, first, last, count FROM runs ORDER BY user")).toEqual([
      { user: "u", first: 1, last: 5, count: 4 },
      { user: "v", first: 1, last: 1, count: 1 },
    ]);
    store = await openSqliteDeliveryStore(runtime, path, () => limits);
    try {
      expect((await store.read("u", 0, 10)).map((m) => [m.seq, m.data])).toEqual([[5, '"dddd"']]);
      expect(await store.inbox("u")).toMatchObject({ depth: 1, bytes: 6, lastSeq: 5, acked: 3 });
      expect(await store.depth()).toBe(2);
      // Expiring the partly done run counts only what still waited in it.
      expect((await store.expire(Date.now() + 1)).sort((a, b) => a.user.localeCompare(b.user))).toEqual([
        { user: "u", count: 1 },
        { user: "v", count: 1 },
      ]);
      expect(await store.depth()).toBe(0);
      expect(await store.inbox("u")).toMatchObject({ depth: 0, bytes: 0 });
      // The last one acknowledged: the run is gone.
      await store.append("u", "chat", '"e"', true);
      await store.ack("u", 6);
      expect(await store.inbox("u")).toMatchObject({ depth: 0, bytes: 0, acked: 6 });
    } finally {
      await store.close();
    }
    expect(fileRows(path, "SELECT user FROM runs")).toEqual([]);
  });

  test("the rows kept in memory are bounded: forgotten ones are read from the file again, counts and seqs intact", async () => {
    const limits = { maxMessages: 100, maxBytes: 10_000, maxAgeSeconds: 3600 };
    const store = await openSqliteDeliveryStore(runtime, join(tempDir(), "delivery.db"), () => limits, 8);
    try {
      const users = Array.from({ length: 30 }, (_, i) => `user-${i}`);
      // One transaction reads and writes all thirty; the bound holds once it has committed.
      expect((await Promise.all(users.map((u) => store.append(u, "chat", `"${u}"`, true)))).every((r) => r.ok && r.seq === 1)).toBe(true);
      expect(store.cachedUserCount).toBeLessThanOrEqual(8);
      // Every login reads its user's row, and users the file does not know are remembered as absent: both forgotten too.
      for (let i = 0; i < 20; i++) expect(await store.login(`new-${i}`, true)).toEqual({ acked: 0, reset: true });
      for (let i = 0; i < 20; i++) expect(await store.knows(`nobody-${i}`)).toBe(false);
      expect(store.cachedUserCount).toBeLessThanOrEqual(8);
      for (let i = 0; i < 20; i++) expect(await store.login(`new-${i}`, true)).toEqual({ acked: 0, reset: false });
      for (const u of users) {
        const r = await store.append(u, "chat", '"second"', true);
        expect(r.ok && r.seq).toBe(2);
        expect(store.cachedUserCount).toBeLessThanOrEqual(8);
      }
      await Promise.all(users.filter((_, i) => i % 2 === 0).map((u) => store.ack(u, 1)));
      for (const [i, u] of users.entries()) {
        expect(await store.inbox(u)).toMatchObject(i % 2 === 0 ? { depth: 1, bytes: 8, lastSeq: 2, acked: 1 } : { depth: 2, bytes: 8 + u.length + 2, lastSeq: 2, acked: 0 });
      }
      expect(await store.depth()).toBe(45);
    } finally {
      await store.close();
    }
  });

  test("types and data of any text come back as they were stored, from one run and from several", async () => {
    const store = await openSqliteDeliveryStore(runtime, join(tempDir(), "delivery.db"), () => ({ maxMessages: 100, maxBytes: 10_000, maxAgeSeconds: 3600 }));
    try {
      const cases: Array<[string, string | undefined]> = [
        ["chat", '"plain"'],
        ["ünï 型 = - 12,34 \n", '{"é":"line\\nbreak","n":[1,2],"big":12345678901234567890}'],
        ["", "0"],
        ["t", undefined],
        ["😀,", '"😀\n,-1,"'],
        ["-", "-1"],
      ];
      const turn = await Promise.all(cases.map(([type, data]) => store.append("any", type, data, true)));
      expect(turn.every((r) => r.ok)).toBe(true);
      for (const [type, data] of cases) expect((await store.append("any", type, data, true)).ok).toBe(true);
      const read = await store.read("any", 0, 100);
      expect(read.map((m) => [m.type, m.data])).toEqual([...cases, ...cases]);
      expect(read.map((m) => m.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      expect((await store.read("any", 4, 3)).map((m) => m.seq)).toEqual([5, 6, 7]);
      const bytes = cases.reduce((sum, [, d]) => sum + (d === undefined ? 0 : Buffer.byteLength(d)), 0);
      expect(await store.inbox("any")).toMatchObject({ depth: 12, bytes: 2 * bytes });
      await store.ack("any", 5);
      const rest = cases.slice(5).reduce((sum, [, d]) => sum + (d === undefined ? 0 : Buffer.byteLength(d)), 0);
      expect(await store.inbox("any")).toMatchObject({ depth: 7, bytes: rest + bytes });
    } finally {
      await store.close();
    }
  });

  test("a file of the first schema (a row per message) is converted at open: nothing lost, counts kept", async () => {
    const path = join(tempDir(), "delivery.db");
    const db = new Database(path);
    db.exec(`
      CREATE TABLE users (name TEXT PRIMARY KEY, last_seq INTEGER NOT NULL DEFAULT 0, acked INTEGER NOT NULL DEFAULT 0,
        depth INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0, announced INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE messages (user TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, data TEXT, bytes INTEGER NOT NULL,
        stored_at INTEGER NOT NULL, PRIMARY KEY (user, seq)) WITHOUT ROWID;
      CREATE INDEX messages_by_age ON messages (stored_at);
      INSERT INTO users VALUES ('old', 4, 1, 3, 11, 1);
      INSERT INTO messages VALUES ('old', 2, 'chat', '"x"', 3, 1000), ('old', 3, 'ünï', NULL, 0, 2000), ('old', 4, 'chat', '"😀é"', 8, 3000);
    `);
    db.close();
    const store = await openSqliteDeliveryStore(runtime, path, () => LIMITS);
    try {
      expect(await store.read("old", 0, 10)).toEqual([
        { seq: 2, type: "chat", data: '"x"', storedAt: 1000 },
        { seq: 3, type: "ünï", data: undefined, storedAt: 2000 },
        { seq: 4, type: "chat", data: '"😀é"', storedAt: 3000 },
      ]);
      expect(await store.inbox("old")).toEqual({ username: "old", depth: 3, bytes: 11, oldest: 1000, lastSeq: 4, acked: 1 });
      expect(await store.login("old", true)).toEqual({ acked: 1, reset: false });
      await store.ack("old", 3);
      expect(await store.inbox("old")).toMatchObject({ depth: 1, bytes: 8 });
      expect(await store.append("old", "chat", "5", true)).toEqual({ ok: true, seq: 5 });
    } finally {
      await store.close();
    }
    expect(fileRows<{ name: string }>(path, "SELECT name FROM sqlite_master WHERE name LIKE 'messages%'")).toEqual([]);
    expect(fileRows(path, "PRAGMA user_version")).toEqual([{ user_version: 2 }]);
  });

  test("a second gateway cannot open the same file: refused, naming it", async () => {
    const path = join(tempDir(), "delivery.db");
    const first = await openSqliteDeliveryStore(runtime, path, () => LIMITS);
    try {
      await expect(openSqliteDeliveryStore(runtime, path, () => LIMITS)).rejects.toThrow(`delivery store ${path} is in use by another gateway`);
    } finally {
      await first.close();
    }
  });
});

/** A logger whose JSON records are kept for assertions. */
function recordingLogger(): { log: Logger; records: any[] } {
  const records: any[] = [];
  return { log: createLogger("debug", "json", (line) => records.push(JSON.parse(line))), records };
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `p`, or a failure naming `what` if it has not settled within `ms` (a call that hangs). */
function settles<T>(what: string, p: Promise<T>, ms = 3000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)));
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** Reads (read events on client sockets) and commands the Redis at `cli` has processed so far. */
function serverStats(cli: (...args: string[]) => string): { reads: number } {
  const info = cli("INFO", "stats");
  return { reads: Number(/total_reads_processed:(\d+)/.exec(info)![1]) };
}

describe("delivery store: redis only", () => {
  const stores: DeliveryStore[] = [];
  afterAll(() => Promise.all(stores.map((s) => s.close())));
  const openAt = async (where: "redis" | "cluster", limits: InboxLimits = LIMITS, extra: Partial<RedisDeliveryStoreOptions> = {}) => {
    const store = await openRedisDeliveryStore({ ...(await redisAt(where)), prefix: newPrefix(), ...extra }, () => limits);
    stores.push(store);
    return store;
  };

  test("a user's keys share one hash slot (CLUSTER KEYSLOT): a hash, and a List of the kept messages in seq order", async () => {
    const cluster = await redisCluster();
    const store = await openAt("cluster");
    for (const user of ["alice", "bob", "we}ird{name", "ünï"]) {
      await store.append(user, "chat", '"x"', true);
      await store.append(user, "chat", '"y"', false);
      await store.append(user, "chat", '"z"', true);
      const k = store.keys(user);
      const slots = [k.state, k.messages, k.channel].map((key) => cluster.cli("CLUSTER", "KEYSLOT", key));
      expect(new Set(slots).size).toBe(1);
      expect(cluster.cli("TYPE", k.state)).toBe("hash");
      expect(cluster.cli("TYPE", k.messages)).toBe("list");
      // <seq> <storedAt> <bytes kept before it> <type bytes> <type>=<data>
      expect(cluster.cli("LRANGE", k.messages, "0", "-1").split("\n").map((l) => l.replace(/^(\d+) \d+ /, "$1 T "))).toEqual([
        '1 T 0 4 chat="x"',
        '3 T 3 4 chat="z"',
      ]);
    }
    // Different users land in different slots: the cluster spreads them.
    const slotsOf = ["alice", "bob", "carol", "dave"].map((u) => cluster.cli("CLUSTER", "KEYSLOT", store.keys(u).state));
    expect(new Set(slotsOf).size).toBeGreaterThan(1);
  });

  for (const where of ["redis", "cluster"] as const) {
    test(`${where}: the appends of one job go as one script call per slot, 128 at most, each with its own answer in order`, async () => {
      const store = await openAt(where, { maxMessages: 150, maxBytes: 1_000_000, maxAgeSeconds: 3600 });
      const clis = where === "redis" ? [(await redisServer()).cli] : (await redisCluster()).nodes.map((n) => n.cli);
      const evals = () => clis.reduce((sum, cli) => sum + Number(/cmdstat_evalsha:calls=(\d+)/.exec(cli("INFO", "commandstats"))?.[1] ?? 0), 0);
      await store.append("one", "t", "0", false);
      await store.depth(); // the index note of that append is out
      const before = evals();
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.append("one", "t", String(i + 1), true)));
      const calls = evals() - before;
      // One user is one slot: 128 appends, then 72; the index note that follows may be in already.
      expect(calls).toBeGreaterThanOrEqual(2);
      expect(calls).toBeLessThanOrEqual(3);
      expect(results.slice(0, 150)).toEqual(Array.from({ length: 150 }, (_, i) => ({ ok: true, seq: i + 2 })));
      for (const r of results.slice(150)) expect(r).toMatchObject({ ok: false, code: "inbox_full" });
      expect((await store.read("one", 0, 200)).map((m) => m.data)).toEqual(Array.from({ length: 150 }, (_, i) => String(i + 1)));
    });

    test(`${where}: calls made in one turn share round trips (the server sees a few reads, not one per call)`, async () => {
      const store = await openAt(where, { maxMessages: 10, maxBytes: 10_000, maxAgeSeconds: 3600 });
      const clis = where === "redis" ? [(await redisServer()).cli] : (await redisCluster()).nodes.map((n) => n.cli);
      const reads = () => clis.reduce((sum, cli) => sum + serverStats(cli).reads, 0);
      await store.append("warm-up", "t", "1", true);
      const calls = 200;
      let before = reads();
      const results = await Promise.all(Array.from({ length: calls }, (_, i) => store.append(`rt${i}`, "t", '"x"', true)));
      expect(results.every((r) => r.ok)).toBe(true);
      await store.depth(); // the index notes of those appends go out too
      const batched = reads() - before;
      // The same calls one after another: one read each at least (the check can tell the two apart).
      before = reads();
      for (let i = 0; i < calls; i++) await store.append(`rs${i}`, "t", '"x"', true);
      const sequential = reads() - before;
      expect(sequential).toBeGreaterThanOrEqual(calls);
      // Each INFO costs a read per node, and a large write may take a few reads: far from one per call.
      expect(batched).toBeLessThan(calls / 10);
    });

    test(`${where}: a node that lost its scripts (SCRIPT FLUSH) loads them again on the call that finds them gone`, async () => {
      const store = await openAt(where);
      expect(await store.append("sf", "chat", "1", true)).toEqual({ ok: true, seq: 1 });
      const clis = where === "redis" ? [(await redisServer()).cli] : (await redisCluster()).nodes.map((n) => n.cli);
      for (const cli of clis) expect(cli("SCRIPT", "FLUSH")).toBe("OK");
      expect(await store.append("sf", "chat", "2", true)).toEqual({ ok: true, seq: 2 });
      expect((await store.read("sf", 0, 10)).map((m) => m.seq)).toEqual([1, 2]);
      expect(await store.depth()).toBe(2);
    });

    test(`${where}: past the age limit, a read or an append removes a user's old messages; the next expire() reports them, depth drops; the message list expires past the limit`, async () => {
      const store = await openAt(where, { maxMessages: 10, maxBytes: 10_000, maxAgeSeconds: 1 });
      await store.append("lazy1", "chat", '"a"', true);
      await store.append("lazy1", "chat", '"b"', true);
      await store.append("lazy2", "chat", '"c"', true);
      const pttl = Number((where === "redis" ? (await redisServer()).cli : (await redisCluster()).cli)("PTTL", store.keys("lazy1").messages));
      expect(pttl).toBeGreaterThan(1000);
      expect(pttl).toBeLessThanOrEqual(1000 + 3600_000);
      expect(await store.depth()).toBe(3);
      // A read past the limit finds nothing: the read removed them.
      await until("lazy1's messages are past the limit", async () => ((await store.read("lazy1", 0, 10)).length === 0 ? true : undefined));
      expect(await store.inbox("lazy1")).toMatchObject({ depth: 0, bytes: 0, lastSeq: 2 });
      // An append makes room by removing the old message first.
      expect(await store.append("lazy2", "chat", '"d"', true)).toEqual({ ok: true, seq: 2 });
      expect((await store.read("lazy2", 0, 10)).map((m) => m.data)).toEqual(['"d"']);
      // Nothing is older than 0: what is reported is what the read and the append removed.
      expect((await store.expire(0)).sort((a, b) => a.user.localeCompare(b.user))).toEqual([
        { user: "lazy1", count: 2 },
        { user: "lazy2", count: 1 },
      ]);
      expect(await store.expire(0)).toEqual([]);
      expect(await store.depth()).toBe(1);
    });

    test(`${where}: an append to an inbox partly past the age limit holds only what is left against maxBytes`, async () => {
      const limits = { maxMessages: 10, maxBytes: 10_000, maxAgeSeconds: 3600 };
      const store = await openAt(where, limits);
      const t0 = Date.now();
      expect(await store.append("part", "chat", `"${"o".repeat(98)}"`, true)).toEqual({ ok: true, seq: 1 });
      await until("a second has passed since the first message", () => (Date.now() - t0 > 1100 ? true : undefined));
      expect(await store.append("part", "chat", '"ffffffff"', true)).toEqual({ ok: true, seq: 2 });
      // Now the first message (100 bytes) is past the limit and the second (10) is not: the third (10) fits in 30.
      limits.maxAgeSeconds = 1;
      limits.maxBytes = 30;
      expect(await store.append("part", "chat", '"nnnnnnnn"', true)).toEqual({ ok: true, seq: 3 });
      expect((await store.read("part", 0, 10)).map((m) => m.data)).toEqual(['"ffffffff"', '"nnnnnnnn"']);
      expect(await store.inbox("part")).toMatchObject({ depth: 2, bytes: 20 });
      expect(await store.expire(0)).toEqual([{ user: "part", count: 1 }]);
    });

    test(`${where}: a sweep goes through every user and every message, page after page`, async () => {
      const store = await openAt(where, { maxMessages: 1000, maxBytes: 100_000, maxAgeSeconds: 3600 });
      // More users than one sweep step takes from a shard (256), and more messages than a page (100).
      const many = Array.from({ length: 5000 }, (_, i) => `sw${i}`);
      for (let i = 0; i < many.length; i += 500) {
        const results = await Promise.all(many.slice(i, i + 500).map((u) => store.append(u, "chat", "1", true)));
        expect(results.every((r) => r.ok)).toBe(true);
      }
      expect((await Promise.all(Array.from({ length: 249 }, () => store.append("sw0", "chat", "1", true)))).every((r) => r.ok)).toBe(true);
      expect(await store.depth()).toBe(5249);
      const expired = await store.expire(Date.now() + 1);
      expect(expired.length).toBe(5000);
      expect(expired.find((e) => e.user === "sw0")).toEqual({ user: "sw0", count: 250 });
      expect(expired.every((e) => e.user === "sw0" || e.count === 1)).toBe(true);
      expect(await store.depth()).toBe(0);
      expect(await store.inbox("sw0")).toMatchObject({ depth: 0, bytes: 0, lastSeq: 250 });
    });

    test(`${where}: a user's state lost while the messages stay (an eviction): seqs still grow, and the next acknowledging login says reset`, async () => {
      const store = await openAt(where);
      const cli = where === "redis" ? (await redisServer()).cli : (await redisCluster()).cli;
      await store.append("ev", "chat", "1", true);
      await store.append("ev", "chat", "2", true);
      await store.login("ev", true);
      cli("DEL", store.keys("ev").state);
      expect(await store.append("ev", "chat", "3", true)).toEqual({ ok: true, seq: 3 });
      expect((await store.read("ev", 0, 10)).map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(await store.login("ev", true)).toEqual({ acked: 0, reset: true });
    });

    test(`${where}: types and data of any text come back as they were stored`, async () => {
      const store = await openAt(where, { maxMessages: 10, maxBytes: 10_000, maxAgeSeconds: 3600 });
      const cases: Array<[string, string | undefined]> = [
        ["chat", '"plain"'],
        ["ünï 型 = - 12 34 ", '{"é":"line\\nbreak","n":[1,2]}'],
        ["", "0"],
        ["t", undefined],
        ["=", '""'],
        ["-", "-1"],
      ];
      for (const [type, data] of cases) expect((await store.append("any", type, data, true)).ok).toBe(true);
      expect((await store.read("any", 0, 10)).map((m) => [m.type, m.data])).toEqual(cases);
      // Bytes are the data's UTF-8 bytes.
      const bytes = cases.reduce((sum, [, d]) => sum + (d === undefined ? 0 : Buffer.byteLength(d)), 0);
      expect(await store.inbox("any")).toMatchObject({ depth: cases.length, bytes });
    });

    test(`${where}: a list left empty by acks is gone; its seqs go on`, async () => {
      const store = await openAt(where);
      const cli = where === "redis" ? (await redisServer()).cli : (await redisCluster()).cli;
      await store.append("em", "chat", "1", true);
      await store.append("em", "chat", "2", true);
      expect(cli("EXISTS", store.keys("em").messages)).toBe("1");
      await store.ack("em", 1);
      expect(cli("EXISTS", store.keys("em").messages)).toBe("1");
      await store.drop("em", 2);
      expect(cli("EXISTS", store.keys("em").messages)).toBe("0");
      expect(await store.append("em", "chat", "3", true)).toEqual({ ok: true, seq: 3 });
      await store.ack("em", 3);
      expect(cli("EXISTS", store.keys("em").messages)).toBe("0");
      expect(await store.inbox("em")).toMatchObject({ depth: 0, bytes: 0, lastSeq: 3, acked: 3 });
    });

    test(`${where}: a user the index lost (a crash between the script and its note) is still trimmed lazily, and noted again by the next append`, async () => {
      const store = await openAt(where, { maxMessages: 10, maxBytes: 10_000, maxAgeSeconds: 3600 });
      const cli = where === "redis" ? (await redisServer()).cli : (await redisCluster()).cli;
      await store.append("lost", "chat", '"a"', true);
      expect(await store.depth()).toBe(1);
      // The index of every shard, gone.
      for (let k = 0; k < INDEX_SHARDS; k++) for (const part of ["age", "depth", "total"]) cli("DEL", `${store.prefix}{ix:${k}}:${part}`);
      expect(await store.depth()).toBe(0);
      expect(await store.expire(Date.now() + 1)).toEqual([]); // the sweep cannot see it
      expect(await store.append("lost", "chat", '"b"', true)).toEqual({ ok: true, seq: 2 });
      expect(await store.depth()).toBe(2);
      expect(await store.expire(Date.now() + 1)).toEqual([{ user: "lost", count: 2 }]);
      expect(await store.depth()).toBe(0);
    });
  }
});

describe("delivery store: redis outages", () => {
  test("redis going away: every call answers store_unavailable at once, health turns false, one log line; back by itself, nothing lost (appendonly)", async () => {
    const dir = tempDir();
    // Kept through kill -9: every write is on disk before Redis answers it.
    const persisted = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
    const own = await startRedis(undefined, 10000, persisted);
    const { log, records } = recordingLogger();
    const store = await openRedisDeliveryStore({ host: "127.0.0.1", port: own.port, prefix: "o:", log }, () => LIMITS);
    let back: RunningRedis | undefined;
    try {
      expect(await store.append("olga", "chat", '"before"', true)).toEqual({ ok: true, seq: 1 });
      expect(await store.login("olga", true)).toEqual({ acked: 0, reset: true });
      expect(store.health()).toEqual({ ok: true, detail: `redis at 127.0.0.1:${own.port}` });
      expect(records.filter((r) => r.msg === "delivery store connected to redis")).toHaveLength(1);

      await own.stop();
      await until("health turns false", () => (store.health().ok ? undefined : true), 5000);
      const unreachable = new RegExp(`^delivery store unavailable: redis at 127\\.0\\.0\\.1:${own.port} is not reachable \\(.+\\)$`);
      const failed = await settles("append", store.append("olga", "chat", '"during"', true));
      expect(failed).toMatchObject({ ok: false, code: "store_unavailable" });
      expect((failed as { message: string }).message).toMatch(unreachable);
      expect(await settles("ack", store.ack("olga", 1))).toMatchObject({ ok: false, code: "store_unavailable" });
      const rejected = (p: Promise<unknown>) => p.then(() => "resolved", (err: { code?: string; message: string }) => [err.code, err.message]);
      for (const [what, call] of [
        ["read", () => store.read("olga", 0, 10)],
        ["drop", () => store.drop("olga", 1)],
        ["login", () => store.login("olga", true)],
        ["knows", () => store.knows("olga")],
        ["inbox", () => store.inbox("olga")],
        ["clear", () => store.clear("olga")],
        ["expire", () => store.expire(Date.now())],
        ["depth", () => store.depth()],
      ] as const) {
        const outcome = await settles(what, rejected(call()));
        expect(outcome).toEqual(["store_unavailable", expect.stringMatching(unreachable)]);
      }
      expect(store.health()).toMatchObject({ ok: false, detail: expect.stringMatching(/^redis at 127\.0\.0\.1:\d+ is not reachable/) });
      expect(records.filter((r) => r.level === "warn")).toEqual([expect.objectContaining({ msg: "delivery store lost redis", redis: `127.0.0.1:${own.port}` })]);

      back = await startRedis(own.port, 10000, persisted);
      await until("the store reconnects", () => (store.health().ok ? true : undefined));
      const restarted = back;
      // Everything reported good before the outage is there; what was refused during it is not.
      expect((await store.read("olga", 0, 10)).map((m) => [m.seq, m.data])).toEqual([[1, '"before"']]);
      expect(await store.append("olga", "chat", '"after"', true)).toEqual({ ok: true, seq: 2 });
      expect(await store.login("olga", true)).toEqual({ acked: 0, reset: false });
      expect(await store.depth()).toBe(2);
      expect(records.filter((r) => r.msg === "delivery store reconnected to redis")).toHaveLength(1);
      expect(records.filter((r) => r.level === "warn")).toHaveLength(1);
      // The scripts were loaded on reconnecting, before the first call: no call needed EVAL to load one.
      const stats = restarted.cli("INFO", "commandstats");
      expect(stats).toMatch(/cmdstat_evalsha:calls=\d+,.*failed_calls=0/);
      expect(stats).not.toContain("cmdstat_eval:");

      // A Redis that comes back empty (no persistence): the stream starts again, and says so to an acknowledging login.
      await back.stop();
      back = await startRedis(own.port);
      await until("the store reconnects to the empty redis", () => (store.health().ok ? true : undefined));
      expect(await store.login("olga", true)).toEqual({ acked: 0, reset: true });
      expect(await store.append("olga", "chat", '"new"', true)).toEqual({ ok: true, seq: 1 });
    } finally {
      await store.close();
      await back?.stop();
    }
  }, 30000);

  test("a hung redis (SIGSTOP): calls answer store_unavailable after the deadline; what it carries out later still reaches the index", async () => {
    const own = await startRedis();
    const { log, records } = recordingLogger();
    const store = await openRedisDeliveryStore({ host: "127.0.0.1", port: own.port, prefix: "h:", log, commandTimeoutMs: 500 }, () => LIMITS);
    try {
      expect(await store.append("hung", "chat", "1", true)).toEqual({ ok: true, seq: 1 });
      process.kill(own.pid, "SIGSTOP");
      let late;
      try {
        late = await settles("append", store.append("hung", "chat", "2", true));
        expect(late).toEqual({ ok: false, code: "store_unavailable", message: `delivery store unavailable: redis at 127.0.0.1:${own.port} did not answer within 500 ms` });
        expect(store.health()).toEqual({ ok: false, detail: `redis at 127.0.0.1:${own.port} did not answer within 500 ms` });
        // Others fail at once rather than pile up behind it.
        expect(await settles("append", store.append("hung", "chat", "3", true), 400)).toMatchObject({ ok: false, code: "store_unavailable" });
      } finally {
        process.kill(own.pid, "SIGCONT");
      }
      await until("the store notices redis answers again", () => (store.health().ok ? true : undefined), 5000);
      // The append reported unavailable was carried out when Redis woke: stored, and counted.
      expect((await store.read("hung", 0, 10)).map((m) => m.seq)).toEqual([1, 2]);
      expect(await store.depth()).toBe(2);
      expect(records.filter((r) => r.msg === "delivery store reconnected to redis")).toHaveLength(1);
    } finally {
      await store.close();
      await own.stop();
    }
  }, 20000);

  test("redis not there at start: the store opens, answers store_unavailable, and works once redis is up", async () => {
    const port = await freePort();
    const { log, records } = recordingLogger();
    const store = await openRedisDeliveryStore({ host: "127.0.0.1", port, prefix: "late:", log }, () => LIMITS);
    let late: RunningRedis | undefined;
    try {
      expect(store.health().ok).toBe(false);
      expect(await settles("append", store.append("lena", "chat", "1", true))).toMatchObject({ ok: false, code: "store_unavailable" });
      expect(records.filter((r) => r.msg === "delivery store cannot reach redis")).toHaveLength(1);
      late = await startRedis(port);
      await until("the store connects", () => (store.health().ok ? true : undefined));
      expect(await store.append("lena", "chat", "1", true)).toEqual({ ok: true, seq: 1 });
    } finally {
      await store.close();
      await late?.stop();
    }
  }, 30000);

  test("cluster: a master going away fails calls at once and health names the node; back by itself when it rejoins", async () => {
    const cluster = await startRedisCluster();
    const { log, records } = recordingLogger();
    const store = await openRedisDeliveryStore({ host: "127.0.0.1", port: cluster.ports[0]!, prefix: "c:", cluster: true, log }, () => LIMITS);
    try {
      expect(store.health()).toEqual({ ok: true, detail: `redis cluster at 127.0.0.1:${cluster.ports[0]}` });
      const users = Array.from({ length: 12 }, (_, i) => `cu${i}`);
      for (const u of users) expect(await store.append(u, "chat", '"kept"', true)).toEqual({ ok: true, seq: 1 });
      // Which master holds each user's slot.
      const owner = new Map<string, number>();
      const ranges = cluster
        .cli("CLUSTER", "NODES")
        .split("\n")
        .map((line) => {
          const f = line.split(" ");
          const port = Number(/:(\d+)@/.exec(f[1]!)![1]);
          return { node: cluster.ports.indexOf(port), slots: f.slice(8).map((r) => r.split("-").map(Number)) };
        });
      for (const u of users) {
        const slot = Number(cluster.cli("CLUSTER", "KEYSLOT", store.keys(u).state));
        owner.set(u, ranges.find((r) => r.slots.some(([a, b = a]) => slot >= a! && slot <= b!))!.node);
      }
      const gone = owner.get("cu0")!;
      const lost = users.filter((u) => owner.get(u) === gone);
      const kept = users.filter((u) => owner.get(u) !== gone);
      expect(kept.length).toBeGreaterThan(0);

      await cluster.stopNode(gone);
      await until("health turns false", () => (store.health().ok ? undefined : true), 5000);
      expect(store.health().detail).toContain(`node 127.0.0.1:${cluster.ports[gone]}`);
      const failed = await settles("append to a user on the stopped node", store.append(lost[0]!, "chat", '"x"', true));
      expect(failed).toMatchObject({ ok: false, code: "store_unavailable" });
      expect((failed as { message: string }).message).toStartWith(`delivery store unavailable: redis cluster at 127.0.0.1:${cluster.ports[0]}`);
      expect(records.filter((r) => r.level === "warn")).toHaveLength(1);

      await cluster.restartNode(gone);
      await cluster.waitOk();
      await until("the store sees every node again", () => (store.health().ok ? true : undefined), 15000);
      for (const u of kept) expect((await store.read(u, 0, 10)).map((m) => m.data)).toEqual(['"kept"']);
      // The restarted node kept nothing (no persistence): its users start again, and are told so.
      for (const u of lost) expect(await store.login(u, true)).toEqual({ acked: 0, reset: true });
      for (const u of users) expect((await store.append(u, "chat", '"again"', true)).ok).toBe(true);
      expect(records.filter((r) => r.msg === "delivery store reconnected to redis")).toHaveLength(1);
    } finally {
      await store.close();
      await cluster.stop();
    }
  }, 60000);
});
