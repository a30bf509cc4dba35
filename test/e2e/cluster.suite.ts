/**
 * A cluster of gateways on Redis (docs/CLUSTER.md) with real processes: three
 * gateways on one redis-server (and on a three-master Redis Cluster), clients
 * on different nodes, a node killed with SIGKILL, Redis stopped and started
 * again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchBrowser, until as untilOnPage } from "../_harness/browser.ts";
import { runCli, type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { ack, connectDelivering, deliveries, relay, reportOf } from "../_harness/delivery.ts";
import { scripted } from "../_harness/handlers.ts";
import { type RunningRedis, startRedis } from "../_harness/redis.ts";
import { type RunningRedisCluster, startRedisCluster } from "../_harness/redis-cluster.ts";
import { startHoldingProxy } from "../_harness/tcp-proxy.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { openWire, type Target, type Wire } from "../_harness/wire.ts";

const HEARTBEAT_MS = 200;
const DEAD_AFTER_MS = 1000;

/** Every client a test logged in: closed after each test, so a test that fails leaves no user behind for the next one. */
const opened = new Set<Wire>();

/** Logs in (acknowledging or not) and returns the wire. */
async function connect(target: Target, user: string, acknowledge = false): Promise<Wire> {
  const wire = (await connectDelivering(target, user, acknowledge)).wire;
  opened.add(wire);
  return wire;
}





async function send(sender: Wire, to: string[], body: unknown, id: string): Promise<any> {
  sender.send(relay(id, to, body));
  return reportOf(sender, id);
}

/** Polls `f` until it returns something truthy, for at most `ms`. */
async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface RedisAt {
  port: number;
  cluster: boolean;
}

/** A node's config: the cluster on `redis`, a relay handler, the control API on a free port, the informer in its folder. */
function nodePatch(redis: RedisAt, node: string, prefix: string) {
  return {
    informer: { enabled: true, path: "informer.sock" },
    handlers: { availableTypes: ["relay"], typeMap: { relay: scripted("relay.sock", { mode: "persistent" }) } },
    control: { enabled: true, address: "127.0.0.1", port: 0 },
    delivery: { store: "redis", redis: { port: redis.port, prefix, cluster: redis.cluster } },
    cluster: { enabled: true, node, heartbeatMs: HEARTBEAT_MS, deadAfterMs: DEAD_AFTER_MS },
  };
}

async function startNodes(runtime: RuntimeName, redis: RedisAt, prefix: string, n = 3): Promise<RunningGateway[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startGateway(runtime, nodePatch(redis, `node${i + 1}`, prefix))));
}

const json = async (url: string, init?: RequestInit) => (await fetch(url, init)).json() as Promise<any>;

/** The main flow, on one Redis or on a Redis Cluster. */
function mainFlow(runtime: RuntimeName, label: string, redisAt: () => RedisAt) {
  describe(`${runtime}: cluster on ${label}`, () => {
    let gws: RunningGateway[] = [];
    beforeAll(async () => {
      gws = await startNodes(runtime, redisAt(), `c${Math.random().toString(36).slice(2, 8)}:`);
      // Every node sees the other two.
      await until("three nodes registered", async () => (await json(`${gws[0]!.control}/v1/cluster`)).nodes?.length === 3);
    }, 60_000);
    afterAll(async () => {
      await Promise.all(gws.map((g) => g.stop()));
    });

    test("a handler on one node reaches a user on another, in order; the nodes and the clients are seen from any node", async () => {
      const ann = await connect(gws[1]!.tcp4, "ann");
      const bo = await connect(gws[0]!.tcp4, "bo");
      for (let i = 0; i < 20; i++) bo.send(relay(`m${i}`, ["ann"], i));
      for (let i = 0; i < 20; i++) expect((await reportOf(bo, `m${i}`)).header).toEqual({ status: "good", messageType: "statusReport" });
      expect((await deliveries(ann, 20)).map(([, d]) => d)).toEqual(Array.from({ length: 20 }, (_, i) => i));

      const cluster = await json(`${gws[2]!.control}/v1/cluster`);
      expect(cluster.node).toBe("node3");
      expect(cluster.nodes.map((n: any) => n.node)).toEqual(["node1", "node2", "node3"]);
      const clients = await until("both users listed", async () => {
        const c = (await json(`${gws[2]!.control}/v1/clients`)).clients;
        return c.length === 2 && c;
      });
      expect(clients.map((c: any) => [c.username, c.nodes])).toEqual([
        ["ann", [{ node: "node2", sessions: 1 }]],
        ["bo", [{ node: "node1", sessions: 1 }]],
      ]);
      const ctl = await runCli(runtime, ["ctl", "clients", "--control", gws[2]!.control!]);
      expect(ctl.code).toBe(0);
      expect(ctl.stdout).toMatch(/ann\s.*node2/);
      expect(ctl.stdout).toMatch(/bo\s.*node1/);
      ann.close();
      bo.close();
    }, 60_000);

    test("a user with sessions on two nodes gets one copy on each; an acknowledging one gets the seq", async () => {
      const onOne = await connect(gws[0]!.tcp4, "cy");
      const onTwo = await connect(gws[1]!.tcp4, "cy", true);
      // The sender's node holds one of the sessions: it writes that one itself and ignores its own notification.
      const dee = await connect(gws[0]!.tcp4, "dee");
      await until("cy present on two nodes", async () => {
        const c = (await json(`${gws[2]!.control}/v1/clients`)).clients.find((x: any) => x.username === "cy");
        return c?.nodes.length === 2;
      });
      expect((await send(dee, ["cy"], "hello", "h1")).header.status).toBe("good");
      expect(await deliveries(onOne, 1)).toEqual([[undefined, "hello"]]);
      expect(await deliveries(onTwo, 1)).toEqual([[1, "hello"]]);
      // Nothing more on either: the next message comes next, not a second copy.
      await send(dee, ["cy"], "next", "h2");
      expect(await deliveries(onOne, 1)).toEqual([[undefined, "next"]]);
      expect(await deliveries(onTwo, 1)).toEqual([[2, "next"]]);
      // Disconnecting from any node reaches every session.
      const r = await json(`${gws[2]!.control}/v1/clients/cy/disconnect`, { method: "POST" });
      expect(r).toEqual({ username: "cy", disconnected: 2 });
      for (const w of [onOne, onTwo]) expect((await w.next()).header.messageType).toBe("fatal");
      dee.close();
    }, 60_000);

    test("the informer of any node answers for the whole cluster: listClients, isClient, serverInfo", async () => {
      const kai = await connect(gws[1]!.tcp4, "kai");
      const kai2 = await connect(gws[2]!.tcp4, "kai");
      const lee = await connect(gws[2]!.tcp4, "lee");
      const informer = await openWire({ path: join(gws[0]!.dir, "informer.sock") });
      const ask = async (type: string, data?: unknown) => {
        informer.send({ command: data === undefined ? { type } : { type, data } });
        return informer.next();
      };
      // A node lists a user a moment before the user's presence names the node: ask until both are in.
      await until("kai and lee listed and present", async () => {
        const r = await ask("listClients");
        return JSON.stringify(r.data) === JSON.stringify(["kai", "lee"]) && (await ask("isClient", "lee")).data === true;
      });
      expect(await ask("isClient", "nobody")).toEqual({ status: "0", data: false });
      // Sessions on every node, as of their last heartbeat.
      await until("three sessions counted", async () => (await ask("serverInfo")).data.clientCount === 3);
      informer.close();
      for (const w of [kai, kai2, lee]) w.close();
    }, 60_000);

    test("nobody connected anywhere: queued, replayed at the next login on any node", async () => {
      (await connect(gws[0]!.tcp4, "eli")).close();
      await until("eli gone", async () => !(await json(`${gws[1]!.control}/v1/clients`)).clients.some((c: any) => c.username === "eli"));
      const fin = await connect(gws[1]!.tcp4, "fin");
      expect((await send(fin, ["eli"], "kept", "k1")).header.queued).toEqual(["eli"]);
      const eli = await connect(gws[2]!.tcp4, "eli");
      expect(await deliveries(eli, 1)).toEqual([[undefined, "kept"]]);
      eli.close();
      fin.close();
    }, 60_000);
  });
}

/** What only a node's death and Redis's absence show, on one Redis of their own. */
function failures(runtime: RuntimeName) {
  describe(`${runtime}: cluster failures`, () => {
    test("a login is answered once the user is present in the cluster: a message sent to it at once is delivered live, not queued", async () => {
      const redis = await startRedis();
      // node2 reaches Redis through a proxy that holds back its subscription to pia's channel, and what follows it.
      const proxy = await startHoldingProxy(redis.port, (chunk) => chunk.includes("{u:pia}:n"), 500);
      const gws = await Promise.all([
        startGateway(runtime, nodePatch({ port: redis.port, cluster: false }, "node1", "j:")),
        startGateway(runtime, nodePatch({ port: proxy.port, cluster: false }, "node2", "j:")),
      ]);
      try {
        await until("two nodes", async () => (await json(`${gws[0]!.control}/v1/cluster`)).nodes.length === 2);
        const quin = await connect(gws[0]!.tcp4, "quin");
        const pia = await connect(gws[1]!.tcp4, "pia");
        expect(redis.cli("HGETALL", "j:{u:pia}:p")).toMatch(/^node2\n/);
        expect((await send(quin, ["pia"], "at once", "p1")).header).toEqual({ status: "good", messageType: "statusReport" });
        expect(await deliveries(pia, 1)).toEqual([[undefined, "at once"]]);
        // The proxy did hold the subscription back: the login waited for it.
        expect(proxy.held()).toBe(1);
        quin.close();
        pia.close();
      } finally {
        await Promise.all(gws.map((g) => g.stop()));
        await proxy.stop();
        await redis.stop();
      }
    }, 60_000);

    test("kill -9 of a node: its users leave presence within deadAfterMs, messages to them wait, and come at the next login elsewhere", async () => {
      const redis = await startRedis();
      const gws = await startNodes(runtime, { port: redis.port, cluster: false }, "k:");
      try {
        await until("three nodes", async () => (await json(`${gws[0]!.control}/v1/cluster`)).nodes.length === 3);
        const gil = await connect(gws[2]!.tcp4, "gil");
        const hob = await connect(gws[0]!.tcp4, "hob");
        await until("gil present", async () => (await json(`${gws[0]!.control}/v1/clients`)).clients.some((c: any) => c.username === "gil"));
        await gws[2]!.kill9();
        await until(
          "gil purged with node3",
          async () => !(await json(`${gws[0]!.control}/v1/clients`)).clients.some((c: any) => c.username === "gil"),
          DEAD_AFTER_MS * 10,
        );
        expect((await json(`${gws[1]!.control}/v1/cluster`)).nodes.map((n: any) => n.node)).toEqual(["node1", "node2"]);
        const purged = [...gws[0]!.records(), ...gws[1]!.records()].filter((r) => r.msg === "cluster: node declared dead, its sessions purged");
        expect(purged.map((r) => [r.level, r.node, r.users])).toEqual([["warn", "node3", 1]]);
        const metrics = (await Promise.all(gws.slice(0, 2).map(async (g) => (await fetch(`${g.control}/metrics`)).text()))).join("\n");
        expect(metrics).toContain("bester_cluster_nodes 2");
        expect(metrics).toMatch(/bester_cluster_dead_node_purges_total 1/);
        expect((await send(hob, ["gil"], "while away", "w1")).header.queued).toEqual(["gil"]);
        const back = await connect(gws[1]!.tcp4, "gil");
        expect(await deliveries(back, 1)).toEqual([[undefined, "while away"]]);
        gil.close();
        back.close();
        hob.close();
      } finally {
        await Promise.all(gws.map((g) => g.stop()));
        await redis.stop();
      }
    }, 60_000);

    test("a burst of logins and logouts leaves no presence and no subscription behind", async () => {
      const redis = await startRedis();
      const gws = await startNodes(runtime, { port: redis.port, cluster: false }, "b:", 2);
      try {
        const wires = await Promise.all(Array.from({ length: 200 }, (_, i) => connect(gws[i % 2]!.tcp4, `burst-${i}`)));
        await until("200 users present", async () => redis.cli("--scan", "--pattern", "b:{u:*}:p").split("\n").filter(Boolean).length === 200);
        for (const w of wires) w.close();
        // Only the nodes' own control channels stay subscribed.
        await until("presence and user channels gone", async () => {
          const present = redis.cli("--scan", "--pattern", "b:{u:*}:p").split("\n").filter(Boolean);
          const channels = redis.cli("pubsub", "shardchannels").split("\n").filter(Boolean);
          return present.length === 0 && channels.length === 2 && channels.every((c) => /^b:\{n:node\d\}:c$/.test(c));
        });
      } finally {
        await Promise.all(gws.map((g) => g.stop()));
        await redis.stop();
      }
    }, 60_000);

    test("Redis stopped: local users go on, what needs Redis is store_unavailable, /ready says cluster; back: ready after the probe, nothing reported good lost", async () => {
      const dir = mkdtempSync(join(tmpdir(), "bester-redis-"));
      const persist = ["--appendonly", "yes", "--appendfsync", "always", "--dir", dir];
      let redis = await startRedis(undefined, 10000, persist);
      const gws = await startNodes(runtime, { port: redis.port, cluster: false }, "o:");
      const ready = async (g: RunningGateway) => json(`${g.control}/ready`);
      try {
        await until("three nodes", async () => (await json(`${gws[0]!.control}/v1/cluster`)).nodes.length === 3);
        const ida = await connect(gws[1]!.tcp4, "ida", true);
        const jon = await connect(gws[0]!.tcp4, "jon");
        const kim = await connect(gws[0]!.tcp4, "kim");
        await until("ida present", async () => (await json(`${gws[0]!.control}/v1/clients`)).clients.some((c: any) => c.username === "ida"));
        expect((await send(jon, ["ida"], "before", "b1")).header.status).toBe("good");
        expect(await deliveries(ida, 1)).toEqual([[1, "before"]]);
        const port = redis.port;
        await redis.stop();
        const refused = await send(jon, ["ida"], "during", "d1");
        expect(refused.header.status).toBe("bad");
        expect(refused.header.error.code).toBe("store_unavailable");
        // Users of one node reach each other without Redis.
        expect((await send(jon, ["kim"], "local", "l1")).header.status).toBe("good");
        expect(await deliveries(kim, 1)).toEqual([[undefined, "local"]]);
        const down = await until("not ready", async () => {
          const r = await ready(gws[0]!);
          return !r.ready && r;
        });
        expect(down.reasons.join(" ")).toContain("cluster:");
        redis = await startRedis(port, 10000, persist);
        for (const g of gws) await until("ready again", async () => (await ready(g)).ready, 30_000);
        const proven = gws[0]!.records().filter((r) => r.msg === "cluster: node registered");
        expect(proven.length).toBeGreaterThanOrEqual(2);
        expect((await send(jon, ["ida"], "after", "a1")).header.status).toBe("good");
        expect(await deliveries(ida, 1)).toEqual([[2, "after"]]);
        ida.close();
        const again = await connect(gws[2]!.tcp4, "ida", true);
        expect(await deliveries(again, 2)).toEqual([[1, "before"], [2, "after"]]);
        again.send(ack("k", 2));
        expect((await reportOf(again, "k")).header.status).toBe("good");
        again.close();
        jon.close();
        kim.close();
      } finally {
        await Promise.all(gws.map((g) => g.stop()));
        await redis.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  });
}

/** The status page of a node: the cluster's nodes, and users of other nodes among the clients. */
function statusPage(runtime: RuntimeName, redisAt: () => RedisAt) {
  describe(`${runtime}: cluster on the status page`, () => {
    test("the cluster section lists every node, this one marked; a user on another node is among the clients with its node", async () => {
      const gws = await startNodes(runtime, redisAt(), "sp:", 2);
      const browser = await launchBrowser();
      try {
        const lou = await connect(gws[1]!.tcp4, "lou");
        const page = await browser.newPage();
        await page.goto(`${gws[0]!.control}/`);
        await untilOnPage(page, "two nodes", () => document.querySelectorAll("#cluster-body tr[data-node]").length === 2);
        const names = await page.locator("#cluster-body tr td:first-child").allTextContents();
        expect(names).toEqual(["node1 (this one)", "node2"]);
        await untilOnPage(page, "lou on node2", () => document.querySelector('#clients-body tr[data-user="lou"][data-node="node2"]') !== null);
        expect(await page.locator('#clients-body tr[data-user="lou"] td.node').textContent()).toBe("on node node2");
        expect(browser.problems).toEqual([]);
        lou.close();
      } finally {
        await browser.close();
        await Promise.all(gws.map((g) => g.stop()));
      }
    }, 60_000);
  });
}

/** `all`: every test (Bun); otherwise the main flow on one Redis. */
export function clusterSuite(runtime: RuntimeName, options: { all: boolean } = { all: true }) {
  let redis: RunningRedis | undefined;
  let redisCluster: RunningRedisCluster | undefined;
  afterEach(() => {
    for (const wire of opened) wire.close();
    opened.clear();
  });
  beforeAll(async () => {
    redis = await startRedis();
    if (options.all) redisCluster = await startRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    await redisCluster?.stop();
  });
  mainFlow(runtime, "one Redis", () => ({ port: redis!.port, cluster: false }));
  if (!options.all) return;
  mainFlow(runtime, "a three-master Redis Cluster", () => ({ port: redisCluster!.ports[0]!, cluster: true }));
  failures(runtime);
  statusPage(runtime, () => ({ port: redis!.port, cluster: false }));
}
