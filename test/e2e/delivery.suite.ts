/**
 * PROTOCOL.md §9 against a real gateway: the inbox for users who are not
 * connected, acknowledged delivery with seqs, replay at login, limits,
 * expiry, a gateway killed with SIGKILL, the store lost. One test per rule,
 * each on the engines the suite is given (SQLite; Redis when it is there).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchGateway, type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { ack, connectDelivering as connect, deliveries, relay, reportOf } from "../_harness/delivery.ts";
import { scripted } from "../_harness/handlers.ts";
import { type RunningRedis, startRedis } from "../_harness/redis.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import type { Wire } from "../_harness/wire.ts";

const handlers = {
  handlers: {
    availableTypes: ["relay"],
    typeMap: { relay: scripted("relay.sock", { mode: "persistent" }) },
  },
};




/** Sends `count` messages from `sender` to `to`, each answered good; returns the reports. */
async function send(sender: Wire, to: string, bodies: unknown[], prefix = "m"): Promise<any[]> {
  const reports = [];
  for (const [i, body] of bodies.entries()) {
    sender.send(relay(`${prefix}${i}`, [to], body));
    reports.push(await reportOf(sender, `${prefix}${i}`));
  }
  return reports;
}

/** Where a gateway of the suite keeps its messages: its own SQLite file, or a real redis-server shared by the suite (each gateway its own prefix). */
interface Engine {
  name: "sqlite" | "redis";
  /** The config patch for one more gateway. */
  patch(extra?: object): object;
}

function sqliteEngine(): Engine {
  return { name: "sqlite", patch: (extra = {}) => ({ ...handlers, delivery: { ...extra } }) };
}

function redisEngine(redis: () => RunningRedis): Engine {
  let n = 0;
  return {
    name: "redis",
    patch: (extra = {}) => ({ ...handlers, delivery: { store: "redis", redis: { port: redis().port, prefix: `gw${++n}:` }, ...extra } }),
  };
}

export function deliverySuite(runtime: RuntimeName) {
  let redis: RunningRedis | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  for (const engine of [sqliteEngine(), redisEngine(() => redis!)]) rules(runtime, engine, () => redis!);

  describe(`${runtime}: delivery with Redis going away`, () => {
    test("Redis stopped: store_unavailable for what needs it, live delivery goes on, /ready says why; back: it works again, nothing reported good lost", async () => {
      // A Redis of its own that keeps what it acknowledged through kill -9.
      const dir = mkdtempSync(join(tmpdir(), "bester-redis-"));
      const persist = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
      let own = await startRedis(undefined, 10000, persist);
      const gw = await startGateway(runtime, {
        ...redisEngine(() => own).patch(),
        control: { enabled: true, address: "127.0.0.1", port: 0 },
      });
      const ready = async () => (await fetch(`${gw.control}/ready`)).json();
      try {
        (await connect(gw.tcp4, "uma", true)).wire.close();
        const { wire: vic } = await connect(gw.tcp4, "vic", false);
        const { wire: wes } = await connect(gw.tcp4, "wes", false);
        const [kept] = await send(vic, "uma", ["kept before"]);
        expect(kept.header.queued).toEqual(["uma"]);
        const port = own.port;
        await own.stop();
        // What needs the store is refused by name; delivery between connected plain sessions goes on.
        const [refused] = await send(vic, "uma", ["while down"], "d");
        expect(refused.header.status).toBe("bad");
        expect(refused.header.error.code).toBe("store_unavailable");
        const [live] = await send(vic, "wes", ["live"], "l");
        expect(live.header.status).toBe("good");
        expect(await deliveries(wes, 1)).toEqual([[undefined, "live"]]);
        const deadline = Date.now() + 10_000;
        let r = await ready();
        while (r.ready && Date.now() < deadline) {
          await new Promise((res) => setTimeout(res, 100));
          r = await ready();
        }
        expect(r.ready).toBe(false);
        expect(r.reasons.join(" ")).toContain("delivery store");
        own = await startRedis(port, 10000, persist);
        while (!(await ready()).ready) {
          if (Date.now() > deadline + 20_000) throw new Error("not ready again after Redis came back");
          await new Promise((res) => setTimeout(res, 100));
        }
        const [after] = await send(vic, "uma", ["after"], "a");
        expect(after.header.queued).toEqual(["uma"]);
        const { wire: uma } = await connect(gw.tcp4, "uma", true);
        expect(await deliveries(uma, 2)).toEqual([[1, "kept before"], [2, "after"]]);
        uma.close();
        vic.close();
        wes.close();
      } finally {
        await gw.stop();
        await own.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe(`${runtime}: delivery.store none`, () => {
    test("the original behaviour: nobody's messages kept, no delivery in the login report, no file", async () => {
      const gw = await startGateway(runtime, { ...handlers, delivery: { store: "none" } });
      try {
        (await connect(gw.tcp4, "rae", false)).wire.close();
        const { wire: sam } = await connect(gw.tcp4, "sam", false);
        const [r] = await send(sam, "rae", ["gone"]);
        expect(r.header).toEqual({ status: "good", messageType: "statusReport", undelivered: ["rae"] });
        const { wire: rae, report } = await connect(gw.tcp4, "rae", true);
        expect(report.header.delivery).toBeUndefined();
        rae.send({ payload: { type: "dummy", id: "d", data: null } });
        expect((await rae.next()).payload.id).toBe("d");
        rae.close();
        sam.close();
        expect(existsSync(join(gw.dir, "server.delivery.db"))).toBe(false);
      } finally {
        await gw.stop();
      }
    });
  });
}

function rules(runtime: RuntimeName, engine: Engine, redisOf: () => RunningRedis) {
  describe(`${runtime}: delivery (${engine.name})`, () => {
    let gw: RunningGateway;
    beforeAll(async () => {
      gw = await startGateway(runtime, engine.patch());
    });
    afterAll(async () => {
      await gw?.stop();
    });

    test("a known user who is away: good with queued; at the next login the messages come first, once, in order", async () => {
      (await connect(gw.tcp4, "amy", false)).wire.close(); // known once logged in (open account store)
      const { wire: bob } = await connect(gw.tcp4, "bob", false);
      const reports = await send(bob, "amy", ["one", "two", "three"]);
      for (const r of reports) expect(r.header).toEqual({ status: "good", messageType: "statusReport", queued: ["amy"] });
      // Never seen: nothing is kept, and the report says so as before.
      bob.send(relay("n1", ["nobody-ever"], "lost"));
      expect((await reportOf(bob, "n1")).header).toEqual({ status: "good", messageType: "statusReport", undelivered: ["nobody-ever"] });

      // An original client (no delivery header): the login report is the original one, then the stored messages, without seqs.
      const { wire: amy, report } = await connect(gw.tcp4, "amy", false);
      expect(report).toEqual({ header: { status: "good", messageType: "statusReport" }, payload: { id: "auth_special" } });
      expect(await deliveries(amy, 3)).toEqual([[undefined, "one"], [undefined, "two"], [undefined, "three"]]);
      // Then live traffic.
      bob.send(relay("l1", ["amy"], "live"));
      expect(await deliveries(amy, 1)).toEqual([[undefined, "live"]]);
      expect((await reportOf(bob, "l1")).header.status).toBe("good");
      amy.close();
      // Written to a session that does not acknowledge: done; the next login gets nothing.
      const again = await connect(gw.tcp4, "amy", false);
      again.wire.send({ payload: { type: "dummy", id: "d", data: null } });
      expect((await again.wire.next()).payload).toMatchObject({ type: "dummy", id: "d" });
      again.wire.close();
      bob.close();
    });

    test("acknowledged delivery: the login says so, every delivery has a seq, a lost connection gets the same seqs again", async () => {
      const first = await connect(gw.tcp4, "cat", true);
      expect(first.report.header).toEqual({ status: "good", messageType: "statusReport", delivery: { ack: true, reset: true } });
      const { wire: dan } = await connect(gw.tcp4, "dan", false);
      await send(dan, "cat", ["a", "b"]);
      expect(await deliveries(first.wire, 2)).toEqual([[1, "a"], [2, "b"]]);
      first.wire.close(); // gone before acknowledging
      await send(dan, "cat", ["c"], "x");
      const second = await connect(gw.tcp4, "cat", true);
      expect(second.report.header.delivery).toEqual({ ack: true });
      expect(await deliveries(second.wire, 3)).toEqual([[1, "a"], [2, "b"], [3, "c"]]);
      // Cumulative: up to 2 is done; 3 comes again at the next login.
      second.wire.send(ack("k1", 2));
      expect((await reportOf(second.wire, "k1")).header).toEqual({ status: "good", messageType: "statusReport" });
      second.wire.close();
      const third = await connect(gw.tcp4, "cat", true);
      expect(await deliveries(third.wire, 1)).toEqual([[3, "c"]]);
      third.wire.send(ack("k2", 3));
      await reportOf(third.wire, "k2");
      // Acknowledged, so the next login gets nothing again; live ones go on from seq 4.
      third.wire.close();
      const fourth = await connect(gw.tcp4, "cat", true);
      await send(dan, "cat", ["d"], "y");
      expect(await deliveries(fourth.wire, 1)).toEqual([[4, "d"]]);
      fourth.wire.close();
      dan.close();
    });

    test("bad_ack: a seq never sent, one that is not a positive integer, and a session that did not ask", async () => {
      const { wire: eve } = await connect(gw.tcp4, "eve", true);
      eve.send(ack("b1", 99));
      expect((await reportOf(eve, "b1")).header.error).toEqual({ code: "bad_ack", message: "seq 99 was never sent to eve: the last one sent is 0" });
      eve.send(ack("b2", "1"));
      expect((await reportOf(eve, "b2")).header.error.code).toBe("bad_ack");
      const { wire: plain } = await connect(gw.tcp4, "fay", false);
      plain.send(ack("b3", 1));
      const r = await reportOf(plain, "b3");
      expect(r.header.error.code).toBe("bad_ack");
      expect(r.header.error.message).toContain("did not ask for acknowledged delivery");
      eve.close();
      plain.close();
    });

    test("two sessions of one user: live messages reach both; the stored ones go to the one that logs in", async () => {
      const phone = await connect(gw.tcp4, "gus", true);
      const laptop = await connect(gw.unix, "gus", true);
      const { wire: hal } = await connect(gw.tcp4, "hal", false);
      await send(hal, "gus", ["both"]);
      expect(await deliveries(phone.wire, 1)).toEqual([[1, "both"]]);
      expect(await deliveries(laptop.wire, 1)).toEqual([[1, "both"]]);
      // Either session's acknowledgement is the user's.
      laptop.wire.send(ack("g1", 1));
      await reportOf(laptop.wire, "g1");
      phone.wire.close();
      laptop.wire.close();
      await send(hal, "gus", ["later"], "z");
      const tablet = await connect(gw.tcp6, "gus", true);
      expect(await deliveries(tablet.wire, 1)).toEqual([[2, "later"]]);
      tablet.wire.close();
      hal.close();
    });

    test("a user with an acknowledging and an original session: both get it live; the original's copy makes it done", async () => {
      const acking = await connect(gw.tcp4, "ivy", true);
      const original = await connect(gw.tcp4, "ivy", false);
      const { wire: jon } = await connect(gw.tcp4, "jon", false);
      await send(jon, "ivy", ["hi"]);
      expect(await deliveries(acking.wire, 1)).toEqual([[1, "hi"]]);
      expect(await deliveries(original.wire, 1)).toEqual([[undefined, "hi"]]);
      acking.wire.close();
      original.wire.close();
      const back = await connect(gw.tcp4, "ivy", true);
      back.wire.send({ payload: { type: "dummy", id: "d", data: null } });
      expect((await back.wire.next()).payload.id).toBe("d");
      back.wire.close();
      jon.close();
    });
  });

  describe(`${runtime}: delivery through the control API (${engine.name})`, () => {
    test("GET and DELETE /v1/users/:name/inbox, GET /v1/inboxes, POST /v1/messages queues, and the inbox metrics", async () => {
      const gw = await startGateway(runtime, { ...engine.patch(), control: { enabled: true, address: "127.0.0.1", port: 0 } });
      const api = (path: string, init?: RequestInit) => fetch(`${gw.control}${path}`, init);
      try {
        (await connect(gw.tcp4, "zoe", false)).wire.close();
        const { wire: yan } = await connect(gw.tcp4, "yan", false);
        await send(yan, "zoe", ["a", "bb"]);
        const posted = await api("/v1/messages", { method: "POST", body: JSON.stringify({ to: ["zoe", "nobody-ever"], data: "notice" }) });
        // Stored counts as taken; a user never seen is not.
        expect(await posted.json()).toEqual({ type: "control", delivered: ["zoe"], undelivered: ["nobody-ever"] });
        const inbox = await (await api("/v1/users/zoe/inbox")).json();
        expect(inbox).toMatchObject({ username: "zoe", depth: 3, bytes: 3 + 4 + 8, lastSeq: 3, acked: 0 });
        expect(Date.now() - inbox.oldest).toBeLessThan(60_000);
        expect((await api("/v1/users/nobody-ever/inbox")).status).toBe(404);
        const all = await (await api("/v1/inboxes")).json();
        expect(all).toMatchObject({ store: engine.name, messages: 3 });
        expect(all.inboxes[0]).toMatchObject({ username: "zoe", depth: 3 });
        const metrics = await (await api("/metrics")).text();
        expect(metrics).toContain("\nbester_inbox_messages 3\n");
        expect(metrics).toMatch(/\nbester_inbox_queued_total 3\n/);
        expect(metrics).toMatch(/\nbester_inbox_store_seconds_count 3\n/);
        const cleared = await api("/v1/users/zoe/inbox", { method: "DELETE" });
        expect(await cleared.json()).toEqual({ username: "zoe", removed: 3 });
        expect(await (await api("/v1/users/zoe/inbox")).json()).toMatchObject({ depth: 0, lastSeq: 3 });
        const { wire: zoe } = await connect(gw.tcp4, "zoe", false);
        zoe.send({ payload: { type: "dummy", id: "d", data: null } });
        expect((await zoe.next()).payload.id).toBe("d");
        zoe.close();
        yan.close();
      } finally {
        await gw.stop();
      }
    });
  });

  describe(`${runtime}: delivery limits and failures (${engine.name})`, () => {
    test("inbox_full past the message limit, naming the user; nothing is dropped to make room", async () => {
      const gw = await startGateway(runtime, engine.patch({ inbox: { maxMessages: 2 } }));
      try {
        (await connect(gw.tcp4, "kim", false)).wire.close();
        const { wire: lee } = await connect(gw.tcp4, "lee", false);
        const reports = await send(lee, "kim", ["1", "2", "3"]);
        expect(reports.map((r) => r.header.status)).toEqual(["good", "good", "bad"]);
        expect(reports[2].header.error).toEqual({ code: "inbox_full", message: "the inbox of kim is full: 2 messages wait already, the limit is 2" });
        const { wire: kim } = await connect(gw.tcp4, "kim", false);
        expect(await deliveries(kim, 2)).toEqual([[undefined, "1"], [undefined, "2"]]);
        kim.close();
        lee.close();
      } finally {
        await gw.stop();
      }
    });

    test("expiry: a message older than maxAgeSeconds is removed, logged and counted, and never delivered", async () => {
      const gw = await startGateway(runtime, engine.patch({ inbox: { maxAgeSeconds: 1 } }));
      try {
        (await connect(gw.tcp4, "max", false)).wire.close();
        const { wire: ned } = await connect(gw.tcp4, "ned", false);
        await send(ned, "max", ["stale"]);
        await gw.waitForLog((r) => r.msg === "inbox messages expired" && r.user === "max" && r.count === 1, 10000);
        const { wire: max } = await connect(gw.tcp4, "max", false);
        max.send({ payload: { type: "dummy", id: "d", data: null } });
        expect((await max.next()).payload.id).toBe("d");
        max.close();
        ned.close();
      } finally {
        await gw.stop();
      }
    });

    test("kill -9 between queue and login: what was reported good is delivered after the restart", async () => {
      const gw = await startGateway(runtime, engine.patch());
      try {
        (await connect(gw.tcp4, "oli", true)).wire.close();
        const { wire: pat } = await connect(gw.tcp4, "pat", false);
        const reports = await send(pat, "oli", Array.from({ length: 50 }, (_, i) => i));
        expect(reports.every((r) => r.header.status === "good" && r.header.queued?.[0] === "oli")).toBe(true);
        await gw.kill9();
        const again = await launchGateway(runtime, gw.configPath, gw.dir, { keepDir: true });
        try {
          const { wire: oli, report } = await connect(again.tcp4, "oli", true);
          expect(report.header.delivery).toEqual({ ack: true });
          const got = await deliveries(oli, 50);
          expect(got).toEqual(Array.from({ length: 50 }, (_, i) => [i + 1, i]));
          oli.close();
        } finally {
          await again.stop();
        }
      } finally {
        await gw.stop();
      }
    });

    test("the store lost while the gateway was stopped: the next acknowledging login says reset; a restart alone does not", async () => {
      const first = await startGateway(runtime, engine.patch());
      const { dir, configPath } = first;
      const login = async (gw: RunningGateway) => {
        const { wire, report } = await connect(gw.tcp4, "quin", true);
        wire.close();
        return report.header.delivery;
      };
      try {
        expect(await login(first)).toEqual({ ack: true, reset: true });
        expect(await login(first)).toEqual({ ack: true });
      } finally {
        await first.child.kill("SIGTERM");
        await first.exited;
      }
      const restarted = await launchGateway(runtime, configPath, dir, { keepDir: true });
      try {
        expect(await login(restarted)).toEqual({ ack: true });
      } finally {
        restarted.child.kill("SIGTERM");
        await restarted.exited;
      }
      if (engine.name === "sqlite") {
        const db = join(dir, "server.delivery.db");
        expect(existsSync(db)).toBe(true);
        for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
      } else {
        const prefix = JSON.parse(readFileSync(configPath, "utf8")).delivery.redis.prefix;
        const keys = redisOf().cli("--scan", "--pattern", `${prefix}*`).split("\n").filter((k) => k !== "");
        expect(keys.length).toBeGreaterThan(0);
        redisOf().cli("DEL", ...keys);
      }
      const lost = await launchGateway(runtime, configPath, dir);
      try {
        expect(await login(lost)).toEqual({ ack: true, reset: true });
      } finally {
        await lost.stop();
      }
    });

  });
}
