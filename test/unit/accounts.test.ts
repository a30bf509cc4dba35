/**
 * The account stores against the real thing: scrypt from node:crypto, SQLite
 * files through the Bun adapter, and a real redis-server (stopped, paused and
 * restarted to see the store ride out an outage).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { scryptSync } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openAccountStore, type AccountStore, type VerifyResult } from "../../src/accounts/index.ts";
import { hashPassword, MalformedHashError, parseHash, verifyPassword } from "../../src/accounts/hash.ts";
import { OpenAccountStore } from "../../src/accounts/open.ts";
import { openRedisStore, type RedisStoreOptions } from "../../src/accounts/redis.ts";
import { openSqliteStore } from "../../src/accounts/sqlite.ts";
import { checkUsername } from "../../src/accounts/store.ts";
import type { Config } from "../../src/config/types.ts";
import { createLogger, type Logger } from "../../src/log/logger.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import type { Runtime } from "../../src/runtime/types.ts";
import { freePort, startRedis, type RunningRedis } from "../_harness/redis.ts";

let runtime: Runtime;
const dirs: string[] = [];
beforeAll(async () => {
  runtime = await loadRuntime();
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "bester-accounts-"));
  dirs.push(dir);
  return dir;
}

/** A logger whose JSON records are kept for assertions. */
function recordingLogger(): { log: Logger; records: any[] } {
  const records: any[] = [];
  return { log: createLogger("debug", "json", (line) => records.push(JSON.parse(line))), records };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

function database(patch: Partial<Config["database"]>): Config["database"] {
  return {
    type: "open",
    redis: { address: "127.0.0.1", port: 6379, prefix: "", tls: false, cluster: false },
    sqlite: { path: "/nonexistent/unused.db" },
    allowOpenOnNetwork: false,
    ...patch,
  };
}

const SECRET = "correct horse battery staple";

/** No verify message may ever carry the password it was given. */
function expectNoPassword(r: VerifyResult, password: string) {
  if (!r.ok) expect(r.message).not.toContain(password);
}

describe("password hashing", () => {
  test("a hash is a self-describing scrypt record that verifies its password only", async () => {
    const record = await hashPassword(SECRET);
    expect(record).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(record).not.toContain(SECRET);
    expect(await verifyPassword(SECRET, record)).toBe(true);
    expect(await verifyPassword(SECRET + " ", record)).toBe(false);
    expect(await verifyPassword(SECRET.toUpperCase(), record)).toBe(false);
    expect(await verifyPassword("", record)).toBe(false);
  });

  test("every hash has its own salt", async () => {
    const [a, b] = await Promise.all([hashPassword(SECRET), hashPassword(SECRET)]);
    expect(a).not.toBe(b);
    expect(parseHash(a).salt.equals(parseHash(b).salt)).toBe(false);
    expect(await verifyPassword(SECRET, a)).toBe(true);
    expect(await verifyPassword(SECRET, b)).toBe(true);
  });

  test("a record is verified with the parameters it names, so they can change later", async () => {
    // Built independently with node:crypto, with parameters other than today's.
    const salt = Buffer.from("0123456789abcdef");
    const key = scryptSync("older", salt, 24, { N: 1024, r: 4, p: 2 });
    const record = `scrypt$1024$4$2$${salt.toString("base64")}$${key.toString("base64")}`;
    expect(await verifyPassword("older", record)).toBe(true);
    expect(await verifyPassword("newer", record)).toBe(false);
  });

  test("malformed records are refused with the reason, never taken as a match", async () => {
    const good = await hashPassword("pw");
    const [, , , , salt, key] = good.split("$");
    const bad: Array<[string, string]> = [
      ["", "not a scrypt record"],
      ["pw", "not a scrypt record"],
      ["bcrypt$10$abc", "not a scrypt record"],
      [`scrypt$16384$8$1$${salt}`, "expected 6"],
      [`scrypt$16384$8$1$${salt}$${key}$extra`, "expected 6"],
      [`scrypt$16000$8$1$${salt}$${key}`, "power of two"],
      [`scrypt$016384$8$1$${salt}$${key}`, "N is not a positive integer"],
      [`scrypt$16384$x$1$${salt}$${key}`, "r is not a positive integer"],
      [`scrypt$1073741824$8$1$${salt}$${key}`, "memory bound"],
      [`scrypt$16384$8$1$not*base64$${key}`, "salt is not base64"],
      [`scrypt$16384$8$1$${salt}$${key!.slice(0, -2)}`, "key is not base64"],
      [`scrypt$16384$8$1$AAAA$${key}`, "salt is shorter"],
      [`scrypt$16384$8$1$${salt}$AAAA`, "key is not"],
    ];
    for (const [record, reason] of bad) {
      let error: unknown;
      await verifyPassword("pw", record).catch((e) => (error = e));
      expect(error, record).toBeInstanceOf(MalformedHashError);
      expect((error as Error).message, record).toContain(reason);
    }
  });
});

describe("usernames", () => {
  test("trimmed, non-empty, at most 256 characters, no control characters", () => {
    expect(checkUsername("  alice\t")).toEqual({ ok: true, username: "alice" });
    expect(checkUsername("Zoë 🚀")).toEqual({ ok: true, username: "Zoë 🚀" });
    expect(checkUsername("x".repeat(256)).ok).toBe(true);
    expect(checkUsername("🚀".repeat(256)).ok).toBe(true); // characters, not UTF-16 units
    expect(checkUsername("   ")).toEqual({ ok: false, problem: "username is empty" });
    expect(checkUsername("x".repeat(257))).toEqual({ ok: false, problem: "username is longer than 256 characters" });
    for (const bad of ["a\nb", "a\u0000b", "a\u007fb", "a\u009bb"]) {
      expect(checkUsername(bad)).toEqual({ ok: false, problem: "username contains a control character" });
    }
  });
});

describe("open store", () => {
  test("accepts any non-empty pair, refuses empty ones, keeps no accounts", async () => {
    const store = await openAccountStore(runtime, database({ type: "open" }));
    expect(store).toBeInstanceOf(OpenAccountStore);
    expect(store.kind).toBe("open");
    expect(await store.verify(" bob ", "anything")).toEqual({ ok: true, username: "bob" });
    expect(await store.verify("  ", "pw")).toMatchObject({ ok: false, reason: "unknown_user" });
    expect(await store.verify("bob", "")).toMatchObject({ ok: false, reason: "bad_password" });
    const refusal = 'the open account store keeps no accounts; set database.type to "sqlite" or "redis"';
    await expect(store.setPassword("bob", "pw")).rejects.toThrow(refusal);
    await expect(store.remove("bob")).rejects.toThrow(refusal);
    await expect(store.list()).rejects.toThrow(refusal);
    expect(store.health().ok).toBe(true);
    await store.close();
  });
});

describe("sqlite store", () => {
  test("creates the directory and a private file, then adds, verifies, lists and removes", async () => {
    const path = join(tempDir(), "nested/deeper/accounts.db");
    const store = await openAccountStore(runtime, database({ type: "sqlite", sqlite: { path } }));
    expect(store.kind).toBe("sqlite");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await store.list()).toEqual([]);

    await store.setPassword(" carol ", "c-pw");
    await store.setPassword("alice", SECRET);
    await store.setPassword("bob", "b-pw");
    expect(await store.list()).toEqual(["alice", "bob", "carol"]);

    expect(await store.verify("alice", SECRET)).toEqual({ ok: true, username: "alice" });
    expect(await store.verify("  carol", "c-pw")).toEqual({ ok: true, username: "carol" });
    const wrong = await store.verify("alice", "nope");
    expect(wrong).toMatchObject({ ok: false, reason: "bad_password" });
    expectNoPassword(wrong, "nope");
    const unknown = await store.verify("mallory", SECRET);
    expect(unknown).toMatchObject({ ok: false, reason: "unknown_user" });
    expectNoPassword(unknown, SECRET);

    expect(await store.remove("bob")).toBe(true);
    expect(await store.remove("bob")).toBe(false);
    expect(await store.verify("bob", "b-pw")).toMatchObject({ ok: false, reason: "unknown_user" });
    expect(await store.list()).toEqual(["alice", "carol"]);
    expect(store.health()).toEqual({ ok: true, detail: `sqlite ${path}` });
    await store.close();
    expect(store.health().ok).toBe(false);
  });

  test("changing a password replaces it, keeps created_at, and survives reopening", async () => {
    const path = join(tempDir(), "accounts.db");
    const first = await openSqliteStore(runtime, path);
    await first.setPassword("alice", "old");
    const before = first.db.get<any>("SELECT * FROM accounts WHERE username = ?", "alice")!;
    expect(before.password).toMatch(/^scrypt\$/);
    expect(before.password).not.toContain("old");
    await new Promise((r) => setTimeout(r, 5));
    await first.setPassword("alice", "new");
    const after = first.db.get<any>("SELECT * FROM accounts WHERE username = ?", "alice")!;
    expect(after.created_at).toBe(before.created_at);
    expect(after.updated_at > before.updated_at).toBe(true);
    await first.close();

    const again = await openSqliteStore(runtime, path);
    expect(await again.verify("alice", "new")).toEqual({ ok: true, username: "alice" });
    expect(await again.verify("alice", "old")).toMatchObject({ ok: false, reason: "bad_password" });
    await again.close();
  });

  test("refuses bad usernames and empty passwords with a clear error", async () => {
    const store = await openSqliteStore(runtime, join(tempDir(), "a.db"));
    await expect(store.setPassword("  ", "pw")).rejects.toThrow('invalid username "  ": username is empty');
    await expect(store.setPassword("a\nb", "pw")).rejects.toThrow("control character");
    await expect(store.setPassword("x".repeat(257), "pw")).rejects.toThrow("longer than 256");
    await expect(store.setPassword("alice", "")).rejects.toThrow("the password must not be empty");
    expect(await store.list()).toEqual([]);
    await store.close();
  });

  test("a record that is not scrypt (e.g. a plaintext import) fails as bad_password and says why", async () => {
    const { log, records } = recordingLogger();
    const store = await openSqliteStore(runtime, join(tempDir(), "a.db"), log);
    store.db.run("INSERT INTO accounts VALUES (?, ?, ?, ?)", "legacy", "hunter2", "t", "t");
    const r = await store.verify("legacy", "hunter2");
    expect(r).toMatchObject({ ok: false, reason: "bad_password" });
    expect(r.ok || r.message).toContain("not a valid scrypt record");
    expectNoPassword(r, "hunter2");
    expect(records.some((x) => x.msg === "unreadable password record" && x.user === "legacy")).toBe(true);
    await store.close();
  });

  test("a file that is not a database is refused when opening, naming the file", async () => {
    const path = join(tempDir(), "not-a-db");
    writeFileSync(path, "this is a text file, not SQLite ".repeat(100));
    await expect(openAccountStore(runtime, database({ type: "sqlite", sqlite: { path } }))).rejects.toThrow(
      `cannot open the sqlite account store ${path}`,
    );
  });

  test("an unknown user costs about as much as a known one", async () => {
    const store = await openSqliteStore(runtime, join(tempDir(), "a.db"));
    await store.setPassword("alice", SECRET);
    await store.verify("nobody", "warm-up"); // the dummy record is made on first use
    // Interleaved, and the fastest of each kind: the least disturbed by whatever else the machine runs.
    let known = Infinity;
    let unknown = Infinity;
    for (let i = 0; i < 5; i++) {
      known = Math.min(known, (await timed(() => store.verify("alice", "wrong")))[1]);
      unknown = Math.min(unknown, (await timed(() => store.verify("nobody", "wrong")))[1]);
    }
    // Without the dummy hash an unknown user answers in well under a millisecond.
    expect(unknown).toBeGreaterThan(known * 0.3);
    await store.close();
  }, 20000);
});

describe("redis store", () => {
  let redis: RunningRedis;
  const open: AccountStore[] = [];
  const openStore = async (options: Partial<RedisStoreOptions> = {}) => {
    const store = await openRedisStore({ host: "127.0.0.1", port: redis.port, prefix: "", ...options });
    open.push(store);
    return store;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await redis?.stop();
  });

  test("one hash per user at <prefix><username> with a password field; add, verify, list, remove", async () => {
    const store = await openAccountStore(
      runtime,
      database({ type: "redis", redis: { address: "127.0.0.1", port: redis.port, prefix: "t1:", tls: false, cluster: false } }),
    );
    open.push(store);
    expect(store.kind).toBe("redis");
    expect(store.health()).toEqual({ ok: true, detail: `redis at 127.0.0.1:${redis.port}` });
    await store.setPassword("alice", SECRET);
    await store.setPassword(" bob ", "b-pw");

    expect(redis.cli("TYPE", "t1:alice")).toBe("hash");
    const stored = redis.cli("HGET", "t1:alice", "password");
    expect(stored).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword(SECRET, stored)).toBe(true);
    expect(redis.cli("HKEYS", "t1:bob")).toBe("password");

    expect(await store.list()).toEqual(["alice", "bob"]);
    expect(await store.verify("alice", SECRET)).toEqual({ ok: true, username: "alice" });
    expect(await store.verify("bob ", "b-pw")).toEqual({ ok: true, username: "bob" });
    const wrong = await store.verify("alice", "nope");
    expect(wrong).toMatchObject({ ok: false, reason: "bad_password" });
    expectNoPassword(wrong, "nope");
    expect(await store.verify("carol", SECRET)).toMatchObject({ ok: false, reason: "unknown_user" });

    expect(await store.remove("alice")).toBe(true);
    expect(await store.remove("alice")).toBe(false);
    expect(redis.cli("EXISTS", "t1:alice")).toBe("0");
    expect(await store.list()).toEqual(["bob"]);
  });

  test("works with a password set by another writer in the same layout, and leaves other fields alone", async () => {
    const store = await openStore({ prefix: "t2:" });
    // As another gateway (or a migration script) would write it.
    const salt = Buffer.from("fedcba9876543210");
    const key = scryptSync("dana-pw", salt, 32, { N: 16384, r: 8, p: 1 });
    redis.cli("HSET", "t2:dana", "password", `scrypt$16384$8$1$${salt.toString("base64")}$${key.toString("base64")}`, "email", "d@example.org");
    expect(await store.verify("dana", "dana-pw")).toEqual({ ok: true, username: "dana" });
    await store.setPassword("dana", "new-pw");
    expect(redis.cli("HGET", "t2:dana", "email")).toBe("d@example.org");
    expect(await store.remove("dana")).toBe(true);
    expect(redis.cli("HKEYS", "t2:dana")).toBe("email");
    expect(await store.verify("dana", "new-pw")).toMatchObject({ ok: false, reason: "unknown_user" });
  });

  test("a plain-text password left by the original daemon still logs in, and is then replaced by a hash", async () => {
    const store = await openStore({ prefix: "t9:" });
    redis.cli("HSET", "t9:olduser", "password", "original-plain");
    expect(await store.verify("olduser", "not-it")).toMatchObject({ ok: false, reason: "bad_password" });
    expect(redis.cli("HGET", "t9:olduser", "password")).toBe("original-plain");
    expect(await store.verify("olduser", "original-plain")).toEqual({ ok: true, username: "olduser" });
    expect(redis.cli("HGET", "t9:olduser", "password")).toStartWith("scrypt$16384$8$1$");
    expect(await store.verify("olduser", "original-plain")).toEqual({ ok: true, username: "olduser" });
    expect(await store.verify("olduser", "not-it")).toMatchObject({ ok: false, reason: "bad_password" });
    await store.close();
  });

  test("list keeps only hashes with a password field; keys of other types are not users", async () => {
    const store = await openStore({ prefix: "t3:" });
    await store.setPassword("erin", "pw");
    redis.cli("SET", "t3:a-string", "x");
    redis.cli("HSET", "t3:a-profile", "name", "not a user");
    redis.cli("RPUSH", "t3:a-list", "x");
    expect(await store.list()).toEqual(["erin"]);
    expect(await store.verify("a-string", "x")).toMatchObject({ ok: false, reason: "unknown_user" });
    expect(await store.verify("a-profile", "x")).toMatchObject({ ok: false, reason: "unknown_user" });
    await expect(store.setPassword("a-string", "pw")).rejects.toThrow('redis key "t3:a-string" exists and is not a hash');
    expect(redis.cli("GET", "t3:a-string")).toBe("x");
  });

  test("prefixes keep gateways apart, even prefixes with glob characters", async () => {
    const a = await openStore({ prefix: "gw[1]*:" });
    const b = await openStore({ prefix: "gw1x:" });
    await a.setPassword("frank", "for-a");
    await b.setPassword("frank", "for-b");
    await b.setPassword("grace", "pw");
    expect(await a.list()).toEqual(["frank"]);
    expect(await b.list()).toEqual(["frank", "grace"]);
    expect(await a.verify("frank", "for-a")).toMatchObject({ ok: true });
    expect(await a.verify("frank", "for-b")).toMatchObject({ ok: false, reason: "bad_password" });
    expect(await a.verify("grace", "pw")).toMatchObject({ ok: false, reason: "unknown_user" });
    expect(redis.cli("EXISTS", "gw[1]*:frank")).toBe("1");
  });

  test("list pages through many keys", async () => {
    const store = await openStore({ prefix: "t5:" });
    const names = Array.from({ length: 1200 }, (_, i) => `user${String(i).padStart(4, "0")}`);
    // Written directly: hashing 1200 passwords would only slow the test down.
    const record = await hashPassword("pw");
    for (let i = 0; i < names.length; i += 200) {
      redis.cli("EVAL", "for i, k in ipairs(KEYS) do redis.call('HSET', k, 'password', ARGV[1]) end", "200", ...names.slice(i, i + 200).map((n) => `t5:${n}`), record);
    }
    expect(await store.list()).toEqual(names);
  }, 20000);

  test("redis going away: unavailable at once, one log line for the loss, back by itself when redis returns", async () => {
    const own = await startRedis();
    const { log, records } = recordingLogger();
    const store = await openStore({ port: own.port, prefix: "p:", log });
    await store.setPassword("heidi", "pw");
    expect(records.filter((r) => r.msg === "account store connected to redis")).toHaveLength(1);

    await own.stop();
    const [down, ms] = await timed(() =>
      until("verify says unavailable", async () => {
        const r = await store.verify("heidi", "pw");
        return !r.ok && r.reason === "unavailable" ? r : undefined;
      }),
    );
    expect(ms).toBeLessThan(2000);
    expect(down.ok).toBe(false);
    // The first attempts see the dropped socket (closed, reset), later ones the refused reconnects.
    expect(down.ok || down.message).toMatch(
      new RegExp(`^account store unavailable: redis at 127\\.0\\.0\\.1:${own.port} is not reachable \\(.+\\)$`),
    );
    const refused = await until("a refused reconnect is reported", async () => {
      const r = await store.verify("heidi", "pw");
      return !r.ok && r.message.includes("ECONNREFUSED") ? r : undefined;
    });
    expect(refused).toEqual({
      ok: false,
      reason: "unavailable",
      message: `account store unavailable: redis at 127.0.0.1:${own.port} is not reachable (connect ECONNREFUSED 127.0.0.1:${own.port})`,
    });
    // Answered at once, not after a queue or a timeout.
    const [, again] = await timed(() => store.verify("heidi", "pw"));
    expect(again).toBeLessThan(500); // the command deadline is 1000 ms
    expect(store.health()).toEqual({ ok: false, detail: refused.ok ? "" : refused.message.replace("account store unavailable: ", "") });
    await expect(store.setPassword("heidi", "x")).rejects.toThrow("is not reachable");
    await expect(store.list()).rejects.toThrow("is not reachable");

    // Several reconnect attempts fail meanwhile; they are not logged one by one.
    await new Promise((r) => setTimeout(r, 1500));
    expect(records.filter((r) => r.level === "warn")).toHaveLength(1);
    expect(records.find((r) => r.level === "warn")).toMatchObject({ msg: "account store lost redis", redis: `127.0.0.1:${own.port}` });

    const back = await startRedis(own.port);
    try {
      await until("the store reconnects", async () => (store.health().ok ? true : undefined));
      // The restarted Redis kept nothing (no persistence): the account is gone, the store works.
      expect(await store.verify("heidi", "pw")).toMatchObject({ ok: false, reason: "unknown_user" });
      await store.setPassword("heidi", "pw2");
      expect(await store.verify("heidi", "pw2")).toEqual({ ok: true, username: "heidi" });
      expect(records.filter((r) => r.msg === "account store reconnected to redis")).toHaveLength(1);
      expect(records.filter((r) => r.level === "warn")).toHaveLength(1);
    } finally {
      await store.close();
      await back.stop();
    }
  }, 30000);

  test("redis not there at start: the store opens anyway and starts working once redis is up", async () => {
    const port = await freePort();
    const { log, records } = recordingLogger();
    const [store, ms] = await timed(() => openStore({ port, log }));
    expect(ms).toBeLessThan(1000); // a refused first attempt ends the wait at once
    expect(store.health().ok).toBe(false);
    expect(await store.verify("ivan", "pw")).toMatchObject({ ok: false, reason: "unavailable" });
    expect(records.filter((r) => r.msg === "account store cannot reach redis")).toHaveLength(1);
    const late = await startRedis(port);
    try {
      await until("the store connects", async () => (store.health().ok ? true : undefined));
      await store.setPassword("ivan", "pw");
      expect(await store.verify("ivan", "pw")).toEqual({ ok: true, username: "ivan" });
      expect(records.filter((r) => r.msg === "account store reconnected to redis")).toHaveLength(1);
    } finally {
      await store.close();
      await late.stop();
    }
  }, 30000);

  test("a hung redis (SIGSTOP) makes logins unavailable after the command timeout, and recovers on SIGCONT", async () => {
    const own = await startRedis();
    const { log, records } = recordingLogger();
    const store = await openStore({ port: own.port, log, commandTimeoutMs: 800 });
    await store.setPassword("judy", "pw");
    process.kill(own.pid, "SIGSTOP");
    try {
      const [r, ms] = await timed(() => store.verify("judy", "pw"));
      expect(r).toEqual({
        ok: false,
        reason: "unavailable",
        message: `account store unavailable: redis at 127.0.0.1:${own.port} did not answer within 800 ms`,
      });
      expect(ms).toBeGreaterThan(700);
      expect(ms).toBeLessThan(2000);
      expect(store.health()).toEqual({ ok: false, detail: `redis at 127.0.0.1:${own.port} did not answer within 800 ms` });
      // Further logins fail at once instead of piling up behind the unanswered command.
      const [r2, ms2] = await timed(() => store.verify("judy", "pw"));
      expect(r2).toMatchObject({ ok: false, reason: "unavailable" });
      expect(ms2).toBeLessThan(400);
      expect(records.filter((x) => x.level === "warn")).toHaveLength(1);
    } finally {
      process.kill(own.pid, "SIGCONT");
    }
    // Redis answering the command that timed out is what brings the store back.
    await until("the store notices redis answers again", async () => (store.health().ok ? true : undefined), 5000);
    expect(await store.verify("judy", "pw")).toEqual({ ok: true, username: "judy" });
    expect(records.filter((x) => x.msg === "account store reconnected to redis")).toHaveLength(1);
    await store.close();
    await own.stop();
  }, 20000);
});
