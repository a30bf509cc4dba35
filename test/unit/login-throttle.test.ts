import { describe, expect, test } from "bun:test";
import { CheckQueue } from "../../src/accounts/check-queue.ts";
import { LoginGate, loginSource, UNIX_SOURCE } from "../../src/accounts/login-gate.ts";
import { LoginThrottle, type ThrottleSettings } from "../../src/accounts/throttle.ts";
import type { VerifyResult } from "../../src/accounts/store.ts";

const SETTINGS: ThrottleSettings = { enabled: true, perSource: 3, perUsername: 3, penaltyMs: 1000, maxPenaltyMs: 4000, forgetMs: 60_000 };

function clocked(settings: Partial<ThrottleSettings> = {}, capacity = 100) {
  let now = 1_000_000;
  const throttle = new LoginThrottle(() => ({ ...SETTINGS, ...settings }), capacity, () => now);
  return { throttle, advance: (ms: number) => (now += ms) };
}

describe("LoginThrottle", () => {
  test("a source is held back after perSource failures, for penaltyMs, doubling up to maxPenaltyMs", () => {
    const { throttle, advance } = clocked();
    expect(throttle.failed("10.0.0.1", "a")).toEqual([]);
    expect(throttle.failed("10.0.0.1", "b")).toEqual([]);
    expect(throttle.failed("10.0.0.1", "c")).toEqual([{ by: "source", key: "10.0.0.1", ms: 1000 }]);
    expect(throttle.heldBack("10.0.0.1", "anyone")).toEqual({ by: "source", key: "10.0.0.1", ms: 1000 });
    // Never another address.
    expect(throttle.heldBack("10.0.0.2", "a")).toBeUndefined();
    advance(999);
    expect(throttle.heldBack("10.0.0.1", "a")?.ms).toBe(1);
    advance(1);
    expect(throttle.heldBack("10.0.0.1", "a")).toBeUndefined();
    const holds = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3; i++) holds.push(...throttle.failed("10.0.0.1", `u${round}${i}`));
      advance(10_000);
    }
    expect(holds.map((h) => h.ms)).toEqual([2000, 4000, 4000, 4000]);
    expect(throttle.heldNow()).toEqual({ source: 0, username: 0 });
  });

  test("failures during a hold (checks already under way) do not extend it; quiet for forgetMs forgets everything", () => {
    const { throttle, advance } = clocked();
    for (let i = 0; i < 3; i++) throttle.failed("s", `x${i}`);
    expect(throttle.failed("s", "late")).toEqual([]);
    expect(throttle.heldBack("s", undefined)?.ms).toBe(1000);
    advance(1000);
    throttle.failed("s", "y1");
    throttle.failed("s", "y2");
    advance(60_001);
    // Forgotten: two more failures are not the third, and the next hold is the first again.
    expect(throttle.failed("s", "z1")).toEqual([]);
    expect(throttle.failed("s", "z2")).toEqual([]);
    expect(throttle.failed("s", "z3")).toEqual([{ by: "source", key: "s", ms: 1000 }]);
  });

  test("a username is held back only by failures from perUsername different sources", () => {
    const { throttle } = clocked({ perSource: 100 });
    // One address hammering a name does not lock its owner out from elsewhere.
    for (let i = 0; i < 50; i++) expect(throttle.failed("10.0.0.1", "alice")).toEqual([]);
    expect(throttle.heldBack("10.0.0.9", "alice")).toBeUndefined();
    expect(throttle.failed("10.0.0.2", "alice")).toEqual([]);
    expect(throttle.failed("10.0.0.3", "alice")).toEqual([{ by: "username", key: "alice", ms: 1000 }]);
    expect(throttle.heldBack("10.0.0.9", "alice")).toEqual({ by: "username", key: "alice", ms: 1000 });
    expect(throttle.heldBack("10.0.0.9", "bob")).toBeUndefined();
    expect(throttle.heldNow()).toEqual({ source: 0, username: 1 });
  });

  test("disabled, or a rule at 0: nothing is held back", () => {
    for (const settings of [{ enabled: false }, { perSource: 0, perUsername: 0 }]) {
      const { throttle } = clocked(settings);
      for (let i = 0; i < 20; i++) expect(throttle.failed(`10.0.0.${i % 5}`, "alice")).toEqual([]);
      expect(throttle.heldBack("10.0.0.1", "alice")).toBeUndefined();
    }
  });

  test("remembers at most `capacity` sources: the oldest are forgotten first", () => {
    const { throttle } = clocked({ perUsername: 0 }, 4);
    for (let i = 0; i < 3; i++) throttle.failed("first", "x");
    expect(throttle.heldBack("first", undefined)).toBeDefined();
    for (let i = 0; i < 4; i++) throttle.failed(`other-${i}`, "x");
    expect(throttle.heldBack("first", undefined)).toBeUndefined();
  });
});

/** A check that finishes when the test says so. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("CheckQueue", () => {
  test("runs at most `slots` at once, and takes waiting checks in turn by key", async () => {
    const queue = new CheckQueue(() => 1);
    const order: string[] = [];
    const gates = new Map<string, ReturnType<typeof deferred<void>>>();
    const enqueue = (key: string, name: string) =>
      queue.run(key, () => {
        order.push(name);
        const d = deferred<void>();
        gates.set(name, d);
        return d.promise.then(() => name);
      }, () => "cancelled");
    const results = [enqueue("flood", "f1"), enqueue("flood", "f2"), enqueue("flood", "f3"), enqueue("flood", "f4"), enqueue("other", "o1")];
    expect([queue.running, queue.waiting]).toEqual([1, 4]);
    for (const name of ["f1", "f2", "o1", "f3", "f4"]) {
      await tick();
      expect(order.at(-1)).toBe(name);
      expect(queue.running).toBe(1);
      gates.get(name)!.resolve();
    }
    expect(await Promise.all(results)).toEqual(["f1", "f2", "f3", "f4", "o1"]);
    await tick();
    expect([queue.running, queue.waiting]).toEqual([0, 0]);
  });

  test("cancel answers a key's waiting checks at once without running them; others carry on", async () => {
    const queue = new CheckQueue(() => 1);
    const first = deferred<string>();
    let ran = 0;
    const a1 = queue.run("a", () => first.promise, () => "cancelled");
    const a2 = queue.run("a", async () => (ran++, "ran"), () => "cancelled");
    const b1 = queue.run("b", async () => (ran++, "b ran"), () => "cancelled");
    expect(queue.cancel("a")).toBe(1);
    expect(await a2).toBe("cancelled");
    first.resolve("a1 done");
    expect(await a1).toBe("a1 done");
    expect(await b1).toBe("b ran");
    expect(ran).toBe(1);
  });

  test("a check that throws frees its slot", async () => {
    const queue = new CheckQueue(() => 1);
    const failing = queue.run("a", () => {
      throw new Error("boom");
    }, () => "x");
    const next = queue.run("a", async () => "next", () => "x");
    await expect(failing).rejects.toThrow("boom");
    expect(await next).toBe("next");
  });
});

describe("LoginGate", () => {
  const wrong: VerifyResult = { ok: false, reason: "bad_password", message: "wrong" };

  test("a flood from one source costs perSource checks; its waiting checks are refused when the hold begins", async () => {
    const holds: unknown[] = [];
    const gate = new LoginGate({ settings: () => SETTINGS, slots: () => 2, capacity: 100, onHold: (h) => holds.push(h) });
    let checks = 0;
    const verify = async () => (checks++, await tick(), wrong);
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => gate.login("10.0.0.1", "alice", verify)));
    // Two slots: the third failure begins the hold while the fourth check is already under way.
    expect(checks).toBe(4);
    expect(outcomes.filter((o) => "checked" in o).length).toBe(4);
    expect(outcomes.filter((o) => "held" in o && o.held.by === "source").length).toBe(46);
    expect(holds).toEqual([{ by: "source", key: "10.0.0.1", ms: 1000 }]);
    // Another address is checked at once.
    const right = await gate.login("10.0.0.2", "alice", async () => ({ ok: true, username: "alice" }));
    expect(right).toEqual({ checked: { ok: true, username: "alice" } });
  });

  test("an unavailable store is no failure; an unacceptable username is not tallied by name", async () => {
    const gate = new LoginGate({ settings: () => ({ ...SETTINGS, perSource: 100 }), slots: () => 1, capacity: 100, onHold: () => {} });
    for (let i = 0; i < 5; i++) await gate.login(`10.0.0.${i}`, "alice", async () => ({ ok: false, reason: "unavailable", message: "down" }));
    expect(gate.throttle.heldNow()).toEqual({ source: 0, username: 0 });
    for (let i = 0; i < 5; i++) await gate.login(`10.0.0.${i}`, "x".repeat(300), async () => wrong);
    expect(gate.throttle.heldNow()).toEqual({ source: 0, username: 0 });
  });

  test("sources: the IP address (IPv4-mapped as IPv4), one for every UNIX-socket client", () => {
    expect(loginSource({ kind: "tcp6", host: "::ffff:127.0.0.1", port: 1 })).toBe("127.0.0.1");
    expect(loginSource({ kind: "tcp6", host: "0:0::1", port: 1 })).toBe("::1");
    expect(loginSource({ kind: "unix", path: "/run/a.sock" })).toBe(UNIX_SOURCE);
    expect(loginSource({ kind: "unix", path: "/run/b.sock" })).toBe(UNIX_SOURCE);
  });
});
