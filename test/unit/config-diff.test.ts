/** planReload: what a reload does, and what it refuses. */
import { describe, expect, test } from "bun:test";
import { planReload, planRenewals } from "../../src/config/diff.ts";
import { parseConfigText } from "../../src/config/load.ts";
import type { Config } from "../../src/config/types.ts";

function config(raw: object): Config {
  const r = parseConfigText(JSON.stringify(raw), "/srv/bester/server.conf");
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.path}: ${e.message}`).join("\n"));
  return r.config;
}

const base = {
  network: { types: ["tcp4", "unix"], tcp4: { address: "127.0.0.1", port: 2220 }, unix: { address: "gw.sock" } },
  handlers: {
    availableTypes: ["a", "b"],
    typeMap: { a: { handlerBinary: "./a", unixDomainSocketPath: "a.sock" }, b: { unixDomainSocketPath: "b.sock" } },
  },
};

const plan = (next: object) => {
  const r = planReload(config(base), config(next));
  if (!r.ok) throw new Error(r.reasons.join("\n"));
  return r.plan;
};

describe("planReload", () => {
  test("the same config changes nothing", () => {
    expect(plan(base)).toEqual({
      closeListeners: [],
      openListeners: [],
      stopHandlers: [],
      startHandlers: [],
      reopenAccounts: false,
      changes: [],
    });
  });

  test("listeners: added, removed, moved", () => {
    const p = plan({
      ...base,
      network: { types: ["tcp4", "tcp6", "unix"], tcp4: { address: "127.0.0.1", port: 2230 }, tcp6: { address: "::1", port: 2221 }, unix: { address: "gw2.sock" } },
    });
    expect(p.openListeners.sort()).toEqual(["tcp4", "tcp6", "unix"]);
    expect(p.closeListeners.sort()).toEqual(["tcp4", "unix"]);
    expect(p.changes).toEqual([
      "listener tcp4 moved (127.0.0.1:2220 -> 127.0.0.1:2230)",
      "listener unix moved (/srv/bester/gw.sock -> /srv/bester/gw2.sock)",
      "listener tcp6 added ([::1]:2221)",
    ]);
    const named = { ...base, control: { socket: "/run/c.sock" }, informer: { path: "/run/i.sock" } };
    const r = planReload(config(named), config({ ...named, network: { types: ["tcp4"], tcp4: base.network.tcp4 } }));
    expect(r.ok && r.plan.changes).toEqual(["listener unix removed (/srv/bester/gw.sock)"]);
  });

  test("a switched-off control API or informer is not moved by a listener change", () => {
    const off = { ...base, control: { enabled: false }, informer: { enabled: false } };
    const r = planReload(config(off), config({ ...off, network: { types: ["tcp4"], tcp4: base.network.tcp4 } }));
    expect(r.ok && r.plan.changes).toEqual(["listener unix removed (/srv/bester/gw.sock)"]);
  });

  test("the gateway's own sockets live in the client socket's folder: taking that listener away needs a restart", () => {
    const r = planReload(config(base), config({ ...base, network: { types: ["tcp4"], tcp4: base.network.tcp4 } }));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reasons).toEqual([
      "control: changed, but it cannot be changed while running; restart the gateway to apply it",
      "informer: changed, but it cannot be changed while running; restart the gateway to apply it",
    ]);
  });

  test("the ws listener: added, moved by its address or path, and its allowedOrigins changed live", () => {
    const ws = (block: object) => ({ ...base, network: { ...base.network, types: ["tcp4", "unix", "ws"], ws: block } });
    expect(plan(ws({})).changes).toEqual(["listener ws added (ws://127.0.0.1:2222/bester)"]);
    const was = config(ws({ allowedOrigins: ["https://a.example"] }));
    const diff = (block: object) => {
      const r = planReload(was, config(ws(block)));
      if (!r.ok) throw new Error(r.reasons.join("\n"));
      return r.plan;
    };
    expect(diff({ path: "/chat-ws", allowedOrigins: ["https://a.example"] })).toMatchObject({
      closeListeners: ["ws"],
      openListeners: ["ws"],
      changes: ["listener ws moved (ws://127.0.0.1:2222/bester -> ws://127.0.0.1:2222/chat-ws)"],
    });
    expect(diff({ allowedOrigins: ["https://a.example", "https://b.example"] })).toMatchObject({
      closeListeners: [],
      openListeners: [],
      changes: ['network.ws.allowedOrigins: ["https://a.example"] -> ["https://a.example","https://b.example"]'],
    });
  });

  test("handlers: removed, added, and restarted only when their settings changed", () => {
    const p = plan({
      ...base,
      handlers: {
        availableTypes: ["a", "c"],
        typeMap: {
          a: { handlerBinary: "./a", unixDomainSocketPath: "a.sock", mode: "persistent" },
          c: { unixDomainSocketPath: "c.sock" },
        },
      },
    });
    expect(p.stopHandlers.sort()).toEqual(["a", "b"]);
    expect(p.startHandlers.map((h) => h.type).sort()).toEqual(["a", "c"]);
    expect(p.changes).toContain("handler a restarted (settings changed)");
    expect(p.changes).toContain("handler b removed");
    expect(p.changes).toContain("handler c added");
    expect(plan({ ...base, limits: { sessionWindow: 8 } }).stopHandlers).toEqual([]);
  });

  test("a new frame limit restarts handlers, whose links read it", () => {
    expect(plan({ ...base, limits: { maxFrameBytes: 4096 } }).stopHandlers.sort()).toEqual(["a", "b"]);
  });

  test("limits, log and the account store", () => {
    const p = plan({ ...base, limits: { maxConnections: 5 }, log: { level: "debug" }, database: { type: "sqlite" } });
    expect(p.reopenAccounts).toBe(true);
    expect(p.changes).toContain("limits.maxConnections: 10000 -> 5");
    expect(p.changes).toContain("log: info/text -> debug/text");
  });

  test("the control API and the informer cannot change live", () => {
    const r = planReload(config(base), config({ ...base, control: { port: 2281 }, informer: { enabled: false } }));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reasons).toEqual([
        "control: changed, but it cannot be changed while running; restart the gateway to apply it",
        "informer: changed, but it cannot be changed while running; restart the gateway to apply it",
      ]);
    }
  });
});

describe("planReload: delivery", () => {
  test("the inbox limits change live; the store does not", () => {
    const p = plan({ ...base, delivery: { inbox: { maxMessages: 10 } } });
    expect(p.changes).toEqual(["delivery.inbox.maxMessages: 1000 -> 10"]);
    const r = planReload(config(base), config({ ...base, delivery: { store: "none" } }));
    expect(!r.ok && r.reasons).toEqual([
      "delivery: the store changed, but it cannot be changed while running (it holds the waiting messages); restart the gateway to apply it",
    ]);
  });
});

describe("planReload: cluster", () => {
  test("not live: joining, leaving or changing a node's settings is refused with what to do", () => {
    const redis = { ...base, delivery: { store: "redis" } };
    for (const next of [{ ...redis, cluster: { enabled: true } }, { ...redis, cluster: { heartbeatMs: 1000 } }]) {
      const r = planReload(config(redis), config(next));
      expect(!r.ok && r.reasons).toEqual([
        "cluster: changed, but a node cannot join, leave or change its cluster settings while running; restart the gateway to apply it",
      ]);
    }
  });
});

describe("planRenewals", () => {
  const fresh = () => plan(base);
  const pair = (cert: string, key = "k") => ({ cert, key });

  test("a TLS listener whose files hold another certificate or key is reopened with it; the same files change nothing", () => {
    const p = fresh();
    const current = { tcp4: pair("c1"), unix: undefined };
    const renewed = planRenewals(p, ["tcp4", "unix"], (k) => current[k as "tcp4"], () => pair("c2"));
    expect([...renewed]).toEqual([["tcp4", pair("c2")]]);
    expect(p).toMatchObject({ closeListeners: ["tcp4"], openListeners: ["tcp4"], changes: ["listener tcp4 reopened with the certificate now in its files"] });
    const same = fresh();
    expect(planRenewals(same, ["tcp4"], () => pair("c1"), () => pair("c1")).size).toBe(0);
    expect(same.changes).toEqual([]);
    expect(planRenewals(fresh(), ["tcp4"], () => pair("c1", "k1"), () => pair("c1", "k2")).size).toBe(1);
  });

  test("a file that cannot be used refuses the reload, naming the listener; a listener the plan reopens anyway is not read", () => {
    expect(() =>
      planRenewals(fresh(), ["tcp4"], () => pair("c1"), () => {
        throw new Error("network.tcp4.tls.certFile: cannot read /x: no such file");
      }),
    ).toThrow("tcp4 listener: network.tcp4.tls.certFile: cannot read /x: no such file");
    const moving = fresh();
    moving.openListeners.push("tcp4");
    expect(planRenewals(moving, ["tcp4"], () => pair("c1"), () => { throw new Error("not read"); }).size).toBe(0);
  });
});
