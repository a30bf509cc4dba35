/**
 * The delivery stores against the real thing: SQLite files through the Bun
 * adapter and a real redis-server, held to one contract (PROTOCOL.md §9):
 * seqs, the inbox and its limits, acknowledgements, logins, expiry.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRedisDeliveryStore, type RedisDeliveryStoreOptions } from "../../src/delivery/redis.ts";
import { openSqliteDeliveryStore } from "../../src/delivery/sqlite.ts";
import type { DeliveryStore, InboxLimits } from "../../src/delivery/store.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import type { Runtime } from "../../src/runtime/types.ts";
import { startRedisCluster, type RunningRedisCluster } from "../_harness/redis-cluster.ts";
import { startRedis, type RunningRedis } from "../_harness/redis.ts";

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

describe("delivery store: sqlite only", () => {
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
