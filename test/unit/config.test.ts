import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import * as D from "../../src/config/defaults.ts";
import { findJsonSyntaxError } from "../../src/config/json-error.ts";
import { type ConfigIssue, formatIssue, type LoadResult, loadConfigFile, parseConfigText, validateConfig } from "../../src/config/load.ts";
import { redactConfig } from "../../src/config/redact.ts";
import { checkConfig } from "../../src/config/rules.ts";
import type { Config } from "../../src/config/types.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures");
const SOURCE = "/etc/bester/server.conf";
/** The part of a gateway's own socket names that comes from its config file's path. */
const digest = (path: string) => createHash("sha256").update(path).digest("hex").slice(0, 8);

function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatIssue).join("\n")}`);
  return r.config;
}
function errorLines(r: LoadResult): string[] {
  if (r.ok) throw new Error("expected the config to be refused");
  return r.errors.map(formatIssue);
}
/** Loads an object as if it were the file /etc/bester/server.conf. */
const load = (file: unknown) => validateConfig(file, SOURCE);
const tcp4Only = (extra: Record<string, unknown> = {}) => ({
  network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0 } },
  ...extra,
});

describe("the original server.conf (PROTOCOL.md §8)", () => {
  test("loads unchanged: ports become numbers, paths resolve against the file's directory", async () => {
    const r = await loadConfigFile(join(FIXTURES, "server.conf"));
    const c = ok(r);
    expect(r.warnings).toEqual([]);
    expect(c.source).toBe(join(FIXTURES, "server.conf"));
    expect(c.network).toEqual({
      types: ["unix", "tcp4", "tcp6"],
      unix: { address: join(FIXTURES, "besterUNIXSock"), mode: 0o660 },
      tcp4: { address: "0.0.0.0", port: 2220 },
      tcp6: { address: "::", port: 2221 },
    });
    expect(c.handlers.availableTypes).toEqual(["type1", "type2"]);
    expect({ ...c.handlers.typeMap.type1 }).toEqual({
      type: "type1",
      handlerBinary: join(FIXTURES, "handlers/type1"),
      handlerArgs: [],
      unixDomainSocketPath: join(FIXTURES, "aSock"),
      mode: "per-message",
      connections: 1,
      envelope: false,
      timeoutMs: D.DEFAULT_HANDLER_TIMEOUT_MS,
    });
    expect(c.handlers.typeMap.type2?.unixDomainSocketPath).toBe(join(FIXTURES, "bSock"));
    expect(c.database).toEqual({
      type: "redis",
      redis: { address: "127.0.0.1", port: 6379, prefix: "", tls: false, cluster: false },
      sqlite: { path: join(FIXTURES, "bester-accounts.db") },
      allowOpenOnNetwork: false,
    });
    expect(c.admin).toEqual({ info: {} });
    // Named after the config file, beside the client socket (see "sockets of its own" below).
    expect(c.informer).toEqual({ enabled: true, path: join(FIXTURES, `server-${digest(join(FIXTURES, "server.conf"))}.informer`) });
    expect(c.control).toEqual({ enabled: true, socket: join(FIXTURES, `server-${digest(join(FIXTURES, "server.conf"))}.control`) });
  });

  test("ports given as numbers load the same as strings", async () => {
    const asStrings = ok(await loadConfigFile(join(FIXTURES, "server.conf")));
    const file = JSON.parse(await readFile(join(FIXTURES, "server.conf"), "utf8"));
    file.network.tcp4.port = 2220;
    file.network.tcp6.port = 2221;
    file.database.redis.port = 6379;
    const asNumbers = ok(parseConfigText(JSON.stringify(file), join(FIXTURES, "server.conf")));
    expect(asNumbers).toEqual(asStrings);
  });

  test("ports: 0 and 65535 pass; anything else is refused with the value received", () => {
    for (const [port, want] of [["0", 0], [65535, 65535], ["00080", 80]] as const) {
      expect(ok(load({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port } } })).network.tcp4?.port).toBe(want);
    }
    for (const [port, got] of [["65536", '"65536"'], [-1, "-1"], [80.5, "80.5"], [" 2220", '" 2220"'], [true, "true"], [null, "null"]]) {
      expect(errorLines(load({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port } } }))).toEqual([
        `network.tcp4.port: expected a port 0-65535, got ${got}`,
      ]);
    }
  });
});

describe("errors", () => {
  test("every problem of the broken fixture is reported at once, each at its path", async () => {
    const r = await loadConfigFile(join(FIXTURES, "broken.conf"));
    expect(errorLines(r)).toEqual([
      'network.types[1]: expected one of "unix", "tcp4", "tcp6", "ws", got "tcp5"',
      'network.unix.address: expected a non-empty string, got ""',
      'network.tcp4.port: expected a port 0-65535, got "22x3"',
      'network.tcp6: required because network.types includes "tcp6"',
      "handlers.typeMap.chat.unixDomainSocketPath: required but missing",
      'handlers.typeMap.chat.mode: expected one of "per-message", "persistent", got "pipelined"',
      "handlers.typeMap.chat.connections: expected an integer 1-64, got 0",
      'handlers.typeMap.echo: required because handlers.availableTypes includes "echo"',
      'database.type: expected one of "open", "sqlite", "redis", got "postgres"',
      "database.redis.port: expected a port 0-65535, got 70000",
      "limits.maxFrameBytes: expected an integer >= 64, got -1",
      "limits.handlerTimeoutMs: expected an integer 1-2147483647, got 2.5",
      'log.level: expected one of "debug", "info", "warn", "error", got "verbose"',
    ]);
    expect(r.warnings).toEqual([
      'handlers.typeMap.old: ignored because handlers.availableTypes does not include "old"',
      'unknown key "tpc6" at network (ignored)',
      'unknown key "color" at the top level (ignored)',
    ]);
  });

  test("wrong shapes name what was expected and what came", () => {
    expect(errorLines(load([]))).toEqual(["expected an object, got []"]);
    expect(errorLines(load({}))).toEqual(["network: required but missing"]);
    expect(errorLines(load({ network: { types: [] } }))).toEqual([
      'network.types: expected at least one of "unix", "tcp4", "tcp6", "ws", got []',
    ]);
    expect(errorLines(load({ network: { types: "tcp4" }, handlers: [], control: { enabled: "yes", token: "" } }))).toEqual([
      'network.types: expected an array, got "tcp4"',
      "handlers: expected an object, got []",
      'control.enabled: expected true or false, got "yes"',
      'control.token: expected a non-empty string, got ""',
    ]);
    expect(errorLines(load(tcp4Only({ admin: 5, limits: { sessionWindow: "64" } })))).toEqual([
      "admin: expected an object, got 5",
      'limits.sessionWindow: expected an integer 1-65536, got "64"',
    ]);
  });

  test("a listener address of the other family is refused", () => {
    expect(errorLines(load({
      network: { types: ["tcp4", "tcp6"], tcp4: { address: "::", port: 1 }, tcp6: { address: "0.0.0.0", port: 2 } },
    }))).toEqual([
      'network.tcp4.address: expected an IPv4 address or host name, got "::"',
      'network.tcp6.address: expected an IPv6 address or host name, got "0.0.0.0"',
    ]);
  });

  test("odd keys are quoted in paths", () => {
    const r = load(tcp4Only({
      handlers: { availableTypes: ["my type"], typeMap: { "my type": { unixDomainSocketPath: 3 } } },
    }));
    expect(errorLines(r)).toEqual(['handlers.typeMap["my type"].unixDomainSocketPath: expected a non-empty string, got 3']);
  });

  test("formatIssue leaves out an empty path", () => {
    const i: ConfigIssue = { path: "", message: "cannot read x" };
    expect(formatIssue(i)).toBe("cannot read x");
    expect(formatIssue({ path: "a.b", message: "m" })).toBe("a.b: m");
  });
});

describe("network.types", () => {
  test("a kind named in types needs its block", () => {
    expect(errorLines(load({ network: { types: ["unix", "tcp4"], unix: { address: "s" } } }))).toEqual([
      'network.tcp4: required because network.types includes "tcp4"',
    ]);
  });

  test("blocks of kinds not named are ignored, even when broken", () => {
    const r = load({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1" }, tcp6: { port: "x" }, unix: 7 } });
    const c = ok(r);
    expect(c.network).toEqual({ types: ["tcp4"], tcp4: { address: "127.0.0.1", port: D.DEFAULT_TCP4_PORT } });
    expect(r.warnings).toEqual([
      'network.unix: ignored because network.types does not include "unix"',
      'network.tcp6: ignored because network.types does not include "tcp6"',
    ]);
  });

  test("a kind listed twice is an error", () => {
    expect(errorLines(load({ network: { types: ["tcp4", "tcp4"], tcp4: { address: "127.0.0.1" } } }))).toEqual([
      'network.types[1]: "tcp4" is listed twice',
    ]);
  });
});

describe("handlers", () => {
  const entry = { handlerBinary: "bin/h", unixDomainSocketPath: "h.sock" };

  test("an available type without a typeMap entry is an error", () => {
    expect(errorLines(load(tcp4Only({ handlers: { availableTypes: ["a", "b"], typeMap: { a: entry } } })))).toEqual([
      'handlers.typeMap.b: required because handlers.availableTypes includes "b"',
    ]);
    expect(errorLines(load(tcp4Only({ handlers: { availableTypes: ["a"] } })))).toEqual([
      'handlers.typeMap.a: required because handlers.availableTypes includes "a"',
    ]);
  });

  test("typeMap entries not available are ignored with a warning, and not validated", () => {
    const r = load(tcp4Only({ handlers: { availableTypes: ["a"], typeMap: { a: entry, off: { mode: 3 } } } }));
    const c = ok(r);
    expect(Object.keys(c.handlers.typeMap)).toEqual(["a"]);
    expect(r.warnings).toEqual(['handlers.typeMap.off: ignored because handlers.availableTypes does not include "off"']);
  });

  test("duplicates are dropped, built-in names warned about, reserved names refused", () => {
    const r = load(tcp4Only({ handlers: { availableTypes: ["a", "a", "dummy"], typeMap: { a: entry, dummy: { unixDomainSocketPath: "d" } } } }));
    expect(ok(r).handlers.availableTypes).toEqual(["a", "dummy"]);
    expect(r.warnings).toEqual([
      'handlers.availableTypes[1]: "a" is listed twice (ignored)',
      'handlers.availableTypes[2]: "dummy" is answered by the server itself, so this handler is never used',
    ]);
    expect(errorLines(load(tcp4Only({ handlers: { availableTypes: ["constructor"], typeMap: {} } })))).toEqual([
      'handlers.availableTypes[0]: "constructor" cannot be a type name',
    ]);
  });

  test("extensions default to the original behaviour; timeout comes from limits", () => {
    const c = ok(load(tcp4Only({
      limits: { handlerTimeoutMs: 1234 },
      handlers: {
        availableTypes: ["plain", "fast"],
        typeMap: {
          plain: { unixDomainSocketPath: "/run/plain.sock" },
          fast: { ...entry, handlerArgs: ["--x"], mode: "persistent", connections: 4, envelope: true, timeoutMs: 50 },
        },
      },
    })));
    expect({ ...c.handlers.typeMap.plain }).toEqual({
      type: "plain",
      handlerArgs: [],
      unixDomainSocketPath: "/run/plain.sock",
      mode: "per-message",
      connections: 1,
      envelope: false,
      timeoutMs: 1234,
    });
    expect("handlerBinary" in c.handlers.typeMap.plain!).toBe(false);
    expect({ ...c.handlers.typeMap.fast }).toEqual({
      type: "fast",
      handlerBinary: "/etc/bester/bin/h",
      handlerArgs: ["--x"],
      unixDomainSocketPath: "/etc/bester/h.sock",
      mode: "persistent",
      connections: 4,
      envelope: true,
      timeoutMs: 50,
    });
  });

  test("typeMap has no prototype, so client-chosen names find nothing", () => {
    const c = ok(load(tcp4Only()));
    expect(c.handlers.typeMap.constructor).toBeUndefined();
    expect(c.handlers.typeMap.toString).toBeUndefined();
  });
});

describe("unknown keys", () => {
  test("are warnings with their path, never errors", () => {
    const r = load({
      network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 1, backlog: 5 }, tpc4: {} },
      handlers: { availableTypes: ["a"], typeMap: { a: { unixDomainSocketPath: "s", restart: true } } },
      admin: { info: { anything: { goes: 1 } }, email: "x" },
      limits: { maxFrameByte: 10 },
      extra: null,
    });
    ok(r);
    expect(r.warnings).toEqual([
      'unknown key "backlog" at network.tcp4 (ignored)',
      'unknown key "tpc4" at network (ignored)',
      'unknown key "restart" at handlers.typeMap.a (ignored)',
      'unknown key "email" at admin (ignored)',
      'unknown key "maxFrameByte" at limits (ignored)',
      'unknown key "extra" at the top level (ignored)',
    ]);
  });
});

describe("defaults", () => {
  test("a minimal file gets every default", () => {
    const r = load({ network: { types: ["unix"], unix: { address: "run/bester.sock" } } });
    const c = ok(r);
    expect(r.warnings).toEqual([]);
    expect(c).toEqual({
      source: SOURCE,
      network: { types: ["unix"], unix: { address: "/etc/bester/run/bester.sock", mode: 0o660 } },
      handlers: { availableTypes: [], typeMap: {} },
      database: {
        type: "open",
        redis: { address: "127.0.0.1", port: 6379, prefix: "", tls: false, cluster: false },
        sqlite: { path: "/etc/bester/bester-accounts.db" },
        allowOpenOnNetwork: false,
      },
      admin: { info: {} },
      control: { enabled: true, socket: `/etc/bester/run/server-${digest(SOURCE)}.control` },
      informer: { enabled: true, path: `/etc/bester/run/server-${digest(SOURCE)}.informer` },
      federation: { peers: {}, allowOriginal: [], connectTimeoutMs: 3_000, replyTimeoutMs: 10_000, maxHops: 4 },
      delivery: {
        store: "sqlite",
        sqlite: { path: "/etc/bester/server.delivery.db" },
        redis: { address: "127.0.0.1", port: 6379, prefix: "", tls: false, cluster: false },
        inbox: { maxMessages: 1000, maxBytes: 1024 * 1024, maxAgeSeconds: 7 * 24 * 3600 },
      },
      cluster: { enabled: false, heartbeatMs: 3000, deadAfterMs: 10_000 },
      limits: {
        maxFrameBytes: 1024 * 1024,
        maxJsonDepth: 128,
        loginFailures: { enabled: true, perSource: 5, perUsername: 10, penaltyMs: 1_000, maxPenaltyMs: 300_000, forgetMs: 600_000 },
        authTimeoutMs: 10_000,
        maxConnections: 10_000,
        handlerTimeoutMs: 5_000,
        maxPendingBytes: 8 * 1024 * 1024,
        sessionWindow: 64,
        maxHandlerHops: 8,
        shutdownGraceMs: 5_000,
      },
      log: { level: "info", format: "text" },
    });
  });

  test("without a UNIX listener the gateway's own sockets go to the run directory; given paths resolve beside the file", () => {
    const saved = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = "/run/user/1000";
    try {
      const c = ok(load(tcp4Only()));
      expect(c.informer.path).toBe(`/run/user/1000/bester/server-${digest(SOURCE)}.informer`);
      expect(c.control).toEqual({ enabled: true, socket: `/run/user/1000/bester/server-${digest(SOURCE)}.control` });
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
    }
    const c = ok(load(tcp4Only({ informer: { path: "i.sock" }, control: { socket: "c.sock" }, database: { type: "sqlite", sqlite: { path: "../db/a.db" } } })));
    expect(c.informer.path).toBe("/etc/bester/i.sock");
    expect(c.control).toEqual({ enabled: true, socket: "/etc/bester/c.sock" });
    expect(c.database.sqlite.path).toBe("/etc/db/a.db");
  });

  test("sockets of its own: two config files in one folder never share one; the client socket's name does not matter", () => {
    const unix = (address: string) => ({ network: { types: ["unix"], unix: { address } } });
    const a = ok(validateConfig(unix("a.sock"), "/srv/gw/a.conf"));
    const b = ok(validateConfig(unix("b.sock"), "/srv/gw/b.conf"));
    expect(a.informer.path).toBe(`/srv/gw/a-${digest("/srv/gw/a.conf")}.informer`);
    expect(b.informer.path).toBe(`/srv/gw/b-${digest("/srv/gw/b.conf")}.informer`);
    expect(a.control.socket).not.toBe(b.control.socket);
    // Renamed within its folder (a reload may do that), the client socket leaves them where they were.
    const renamed = ok(validateConfig(unix("a2.sock"), "/srv/gw/a.conf"));
    expect([renamed.informer.path, renamed.control.socket]).toEqual([a.informer.path, a.control.socket]);
  });

  test("delivery: the store file beside the config, named after it; redis settings default to database.redis's; limits checked", () => {
    const c = ok(load(tcp4Only({ database: { type: "redis", redis: { address: "10.0.0.7", port: "6380", prefix: "bx:" } } })));
    expect(c.delivery.sqlite.path).toBe("/etc/bester/server.delivery.db");
    expect(c.delivery.redis).toEqual({ address: "10.0.0.7", port: 6380, prefix: "bx:", tls: false, cluster: false });
    const own = ok(load(tcp4Only({ delivery: { store: "redis", redis: { port: 7000 }, sqlite: { path: "../var/d.db" } } })));
    expect(own.delivery).toMatchObject({ store: "redis", sqlite: { path: "/etc/var/d.db" }, redis: { address: "127.0.0.1", port: 7000 } });
    expect(errorLines(load(tcp4Only({ delivery: { store: "kafka", inbox: { maxMessages: 0, maxBytes: "1MB" } } })))).toEqual([
      'delivery.store: expected one of "sqlite", "redis", "none", got "kafka"',
      "delivery.inbox.maxMessages: expected an integer >= 1, got 0",
      'delivery.inbox.maxBytes: expected an integer >= 1, got "1MB"',
    ]);
    expect(errorLines(load(tcp4Only({ delivery: { store: "redis", redis: { username: "gw" } } })))).toEqual([
      "delivery.redis.username: needs a password: set delivery.redis.password, or the BESTER_REDIS_PASSWORD environment variable",
    ]);
  });

  test("control: an address or a port means TCP (127.0.0.1:2280 filling in); a socket and an address together are refused", () => {
    expect(ok(load(tcp4Only({ control: { port: 2290 } }))).control).toEqual({ enabled: true, address: "127.0.0.1", port: 2290 });
    expect(ok(load(tcp4Only({ control: { address: "::1" } }))).control).toEqual({ enabled: true, address: "::1", port: 2280 });
    expect(errorLines(load(tcp4Only({ control: { socket: "c.sock", port: 2290 } })))).toEqual([
      "control.socket: give either a socket or an address and port, not both",
    ]);
    // A socket takes no token rule: the file's mode is its access check.
    expect(ok(load(tcp4Only({ control: { socket: "/run/c.sock" } }))).control).toEqual({ enabled: true, socket: "/run/c.sock" });
  });
});

describe("rules across keys", () => {
  test("the pending-bytes limit must hold one whole frame", () => {
    expect(errorLines(load(tcp4Only({ limits: { maxFrameBytes: 1000, maxPendingBytes: 1003 } })))).toEqual([
      "limits.maxPendingBytes: expected at least limits.maxFrameBytes + 4 (1004) so one whole frame can be queued, got 1003",
    ]);
    ok(load(tcp4Only({ limits: { maxFrameBytes: 1000, maxPendingBytes: 1004 } })));
  });

  test("the open account store is refused on a network address unless allowed", () => {
    const wide = { network: { types: ["tcp4", "tcp6"], tcp4: { address: "0.0.0.0" }, tcp6: { address: "::1" } } };
    expect(errorLines(load(wide))).toEqual([
      'database.type: "open" lets anyone in with any password, refused while network.tcp4 listens on 0.0.0.0; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true',
    ]);
    ok(load({ ...wide, database: { allowOpenOnNetwork: true } }));
    ok(load({ ...wide, database: { type: "sqlite" } }));
  });

  test("a TCP listener's tls block: paths resolve beside the config; both files are required", () => {
    const c = ok(load({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", tls: { certFile: "tls/cert.pem", keyFile: "/k/key.pem" } } } }));
    expect(c.network.tcp4).toEqual({ address: "127.0.0.1", port: 2220, tls: { certFile: "/etc/bester/tls/cert.pem", keyFile: "/k/key.pem" } });
    expect(ok(load(tcp4Only())).network.tcp4).toEqual({ address: "127.0.0.1", port: 0 });
    expect(errorLines(load({ network: { types: ["tcp6"], tcp6: { address: "::1", tls: { certFile: "c.pem" } } } }))).toEqual([
      "network.tcp6.tls.keyFile: required but missing",
    ]);
  });

  test("redis authentication and TLS: a CA file resolves beside the config; mistakes are refused by name", () => {
    const redis = (r: object) => tcp4Only({ database: { type: "redis", redis: r } });
    const c = ok(load(redis({ username: "bester", password: "pw", tls: true, caFile: "tls/ca.pem" })));
    expect(c.database.redis).toEqual({
      address: "127.0.0.1",
      port: 6379,
      prefix: "",
      username: "bester",
      password: "pw",
      tls: true,
      caFile: "/etc/bester/tls/ca.pem",
      cluster: false,
    });
    expect(ok(load(redis({}))).database.redis.tls).toBe(false);
    expect(errorLines(load(redis({ caFile: "ca.pem" })))).toEqual([
      "database.redis.caFile: only used with TLS; set database.redis.tls to true, or remove it",
    ]);
    const saved = process.env.BESTER_REDIS_PASSWORD;
    delete process.env.BESTER_REDIS_PASSWORD;
    try {
      expect(errorLines(load(redis({ username: "bester" })))).toEqual([
        "database.redis.username: needs a password: set database.redis.password, or the BESTER_REDIS_PASSWORD environment variable",
      ]);
      process.env.BESTER_REDIS_PASSWORD = "from-env";
      ok(load(redis({ username: "bester" })));
    } finally {
      if (saved === undefined) delete process.env.BESTER_REDIS_PASSWORD;
      else process.env.BESTER_REDIS_PASSWORD = saved;
    }
    // A redis block the store does not use is not held against the config.
    ok(load(tcp4Only({ database: { type: "sqlite", redis: { caFile: "ca.pem" } } })));
    expect(errorLines(load(redis({ tls: "yes" })))[0]).toStartWith("database.redis.tls:");
  });

  test("two parties on one socket file are refused, except handlers sharing one program", () => {
    const r = load({
      network: { types: ["unix"], unix: { address: "/run/b/s" } },
      informer: { path: "/run/b/s" },
      handlers: {
        availableTypes: ["a", "b", "c"],
        typeMap: {
          a: { handlerBinary: "a", unixDomainSocketPath: "/run/h" },
          b: { unixDomainSocketPath: "/run/h" },
          c: { handlerBinary: "c", unixDomainSocketPath: "/run/h" },
        },
      },
    });
    expect(errorLines(r)).toEqual([
      "informer.path: same socket as network.unix.address (/run/b/s)",
      "handlers.typeMap.c.unixDomainSocketPath: same socket as handlers.typeMap.a.unixDomainSocketPath (/run/h)",
    ]);
  });

  test("a socket path too long to bind is refused", () => {
    const long = `/${"x".repeat(D.MAX_UNIX_SOCKET_PATH_BYTES)}`;
    expect(errorLines(load({ network: { types: ["unix"], unix: { address: long } }, informer: { enabled: false } }))).toEqual([
      `network.unix.address: socket path is ${long.length} bytes long, the OS allows at most ${D.MAX_UNIX_SOCKET_PATH_BYTES}: ${long}`,
    ]);
  });

  test("control API: port clash is an error, and so is an open address without a token", () => {
    expect(errorLines(load({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 2280 } }, control: { port: 2280 } }))).toEqual([
      "control.port: port 2280 is already used by network.tcp4",
    ]);
    expect(errorLines(load(tcp4Only({ control: { address: "0.0.0.0" } })))).toEqual([
      "control.token: required because control.address 0.0.0.0 is not loopback; set it, or the BESTER_CONTROL_TOKEN environment variable",
    ]);
    expect(load(tcp4Only({ control: { address: "0.0.0.0", token: "s3cret" } })).ok).toBe(true);
    process.env.BESTER_CONTROL_TOKEN = "from-env";
    try {
      expect(load(tcp4Only({ control: { address: "0.0.0.0" } })).ok).toBe(true);
    } finally {
      delete process.env.BESTER_CONTROL_TOKEN;
    }
  });

  test("the printed effective config loads back as a config file: same config, no warnings", () => {
    const c = ok(load(tcp4Only({ handlers: { availableTypes: ["a"], typeMap: { a: { unixDomainSocketPath: "a.sock" } } } })));
    const again = parseConfigText(JSON.stringify(redactConfig(c)), "/elsewhere/server.conf");
    expect(again.warnings).toEqual([]);
    expect(ok(again)).toEqual({ ...c, source: "/elsewhere/server.conf" });
  });

  test("redactConfig hides the control token and the redis password and leaves the config alone", () => {
    const c = ok(load(tcp4Only({ control: { token: "s3cret" }, database: { redis: { password: "redis-pw" } } })));
    const printed = redactConfig(c) as Config;
    expect(JSON.stringify(printed)).not.toContain("s3cret");
    expect(JSON.stringify(printed)).not.toContain("redis-pw");
    expect(printed.control.token).toBe("***");
    expect(printed.database.redis.password).toBe("***");
    expect(c.control.token).toBe("s3cret");
    expect(c.database.redis.password).toBe("redis-pw");
  });
});

describe("network.ws (PROTOCOL.md §10)", () => {
  test('"ws" in types is enough: every key of its block has a default (loopback, port 2222, /bester, no other origins)', () => {
    const c = ok(load({ network: { types: ["ws"] } }));
    expect(c.network).toEqual({ types: ["ws"], ws: { address: "127.0.0.1", port: 2222, path: "/bester", allowedOrigins: [] } });
  });

  test("a full block: tls paths resolve beside the file, origins are kept once each", () => {
    const c = ok(
      load({
        network: {
          types: ["ws"],
          ws: { address: "::1", port: "8080", path: "/gw/ws", tls: { certFile: "c.pem", keyFile: "/k.pem" }, allowedOrigins: ["https://a.example", "http://b.example:8000", "https://a.example"] },
        },
      }),
    );
    expect(c.network.ws).toEqual({
      address: "::1",
      port: 8080,
      path: "/gw/ws",
      tls: { certFile: "/etc/bester/c.pem", keyFile: "/k.pem" },
      allowedOrigins: ["https://a.example", "http://b.example:8000"],
    });
  });

  test("a path must be a URL path, an origin only scheme, host and port: each refused with what was expected", () => {
    const wsWith = (ws: object) => load({ network: { types: ["ws"], ws } });
    expect(errorLines(wsWith({ path: "bester" }))).toEqual(['network.ws.path: expected a path starting with "/" (no query, fragment or white space), got "bester"']);
    expect(errorLines(wsWith({ path: "/a?b" }))).toEqual(['network.ws.path: expected a path starting with "/" (no query, fragment or white space), got "/a?b"']);
    const origin = 'expected an origin like "https://chat.example.com" (scheme, host and optional port; no path)';
    expect(errorLines(wsWith({ allowedOrigins: ["https://a.example/", "a.example", "ftp://a.example", "*", "https://a.example"] }))).toEqual([
      `network.ws.allowedOrigins[0]: ${origin}, got "https://a.example/"`,
      `network.ws.allowedOrigins[1]: ${origin}, got "a.example"`,
      `network.ws.allowedOrigins[2]: ${origin}, got "ftp://a.example"`,
      `network.ws.allowedOrigins[3]: ${origin}, got "*"`,
    ]);
  });

  test("the open account store is refused on a network address, and ports may not clash with a TCP listener or the control API", () => {
    expect(errorLines(load({ network: { types: ["ws"], ws: { address: "0.0.0.0" } } }))).toEqual([
      'database.type: "open" lets anyone in with any password, refused while network.ws listens on 0.0.0.0; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true',
    ]);
    expect(errorLines(load({ network: { types: ["tcp4", "ws"], tcp4: { address: "127.0.0.1", port: 2300 }, ws: { port: 2300 } } }))).toEqual([
      "network.ws.port: port 2300 is already used by network.tcp4",
    ]);
    // Another family may share the number.
    ok(load({ network: { types: ["tcp4", "ws"], tcp4: { address: "127.0.0.1", port: 2300 }, ws: { address: "::1", port: 2300 } } }));
    expect(errorLines(load({ network: { types: ["ws"], ws: { port: 2280 } }, control: { port: 2280 } }))).toEqual(["control.port: port 2280 is already used by network.ws"]);
  });
});

describe("the embedded default", () => {
  const runDir = "/run/user/1000/bester";
  const c = D.embeddedDefaultConfig(runDir);

  test("listens on loopback and in the run directory only", () => {
    expect(c.source).toBeNull();
    expect(c.network).toEqual({
      types: ["unix", "tcp4", "tcp6", "ws"],
      unix: { address: `${runDir}/bester.sock`, mode: 0o660 },
      tcp4: { address: "127.0.0.1", port: 2220 },
      tcp6: { address: "::1", port: 2221 },
      ws: { address: "127.0.0.1", port: 2222, path: "/bester", allowedOrigins: [] },
    });
    expect(c.informer.path).toBe(`${runDir}/informer.sock`);
    expect(c.control).toEqual({ enabled: true, address: "127.0.0.1", port: 2280 });
    expect(c.database.type).toBe("open");
    expect(c.log).toEqual({ level: "info", format: "text" });
  });

  test("passes every check, and written out as a file loads back to itself", () => {
    expect(checkConfig(c)).toEqual({ errors: [], warnings: [] });
    const { source: _, ...file } = c;
    const back = ok(validateConfig(JSON.parse(JSON.stringify(file)), join(runDir, "server.conf")));
    expect(back).toEqual({ ...c, source: join(runDir, "server.conf") });
  });

  test("defaultRunDir prefers XDG_RUNTIME_DIR, else a per-user directory in tmp", () => {
    const saved = process.env.XDG_RUNTIME_DIR;
    try {
      process.env.XDG_RUNTIME_DIR = "/run/user/42";
      expect(D.defaultRunDir()).toBe("/run/user/42/bester");
      delete process.env.XDG_RUNTIME_DIR;
      expect(D.defaultRunDir()).toBe(join(tmpdir(), `bester-${process.getuid?.() ?? "user"}`));
    } finally {
      if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved;
    }
  });
});

describe("reading the file", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bester-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a missing file is one issue naming it", async () => {
    const path = join(dir, "nope.conf");
    expect(errorLines(await loadConfigFile(path))).toEqual([`cannot read ${path}: no such file`]);
    expect(errorLines(await loadConfigFile(dir))).toEqual([`cannot read ${dir}: it is a directory`]);
  });

  test("invalid UTF-8 is refused; a byte-order mark is not a problem", async () => {
    const bad = join(dir, "bad.conf");
    await writeFile(bad, new Uint8Array([0x7b, 0xff, 0x7d]));
    expect(errorLines(await loadConfigFile(bad))).toEqual([`cannot read ${bad}: not valid UTF-8`]);
    const bom = join(dir, "bom.conf");
    await writeFile(bom, `\uFEFF${JSON.stringify(tcp4Only())}`);
    ok(await loadConfigFile(bom));
    ok(parseConfigText(`\uFEFF${JSON.stringify(tcp4Only())}`, bom));
  });

  test("a JSON syntax error is one issue with line and column", () => {
    const text = '{\n  "network": {\n    "types": ["tcp4"],\n  }\n}\n';
    expect(errorLines(parseConfigText(text, "/x/server.conf"))).toEqual([
      '/x/server.conf is not valid JSON: line 4, column 3: trailing comma before "}"',
    ]);
  });
});

describe("findJsonSyntaxError", () => {
  const cases: [string, number, number, string][] = [
    ["", 1, 1, "expected a value, found the end of the text"],
    ['{"a": 1', 1, 8, 'expected "," or "}" after a property value, found the end of the text'],
    ["{\n  'a': 1}", 2, 3, 'expected a property name in double quotes, found "\'"'],
    ['{"a" 1}', 1, 6, 'expected ":" after the property name, found "1"'],
    ['[1, 2,]', 1, 7, 'trailing comma before "]"'],
    ['[1 2]', 1, 4, 'expected "," or "]" after an array element, found "2"'],
    ['{"a": "x\ny"}', 1, 9, "control character inside a string (write \\n or \\t)"],
    ['{"a": "\\q"}', 1, 8, "invalid escape \\q"],
    ['["\\u12g4"]', 1, 3, "\\u must be followed by four hex digits"],
    ['{"a": "open', 1, 7, "string is never closed"],
    ["{} // note", 1, 4, 'unexpected "/" after the JSON value'],
    ['{"a": // c\n1}', 1, 7, "comments are not allowed in JSON"],
    ['{"a": tru}', 1, 7, 'expected a value, found "t"'],
    ['{"a": -}', 1, 7, 'expected a value, found "-"'],
    ["[01]", 1, 3, 'expected "," or "]" after an array element, found "1"'],
  ];
  for (const [text, line, column, reason] of cases) {
    test(JSON.stringify(text), () => {
      expect(() => JSON.parse(text)).toThrow(); // the engine agrees it is broken
      expect(findJsonSyntaxError(text)).toMatchObject({ line, column, reason });
    });
  }

  test("valid JSON has no error", () => {
    for (const text of ['{"a": [1, -2.5e3, true, false, null, "\\u00e9\\n"]}', " 0 ", '"x"', "[]", "{ }"]) {
      expect(JSON.parse(text)).toBeDefined();
      expect(findJsonSyntaxError(text)).toBeNull();
    }
  });
});

describe("cluster (docs/CLUSTER.md)", () => {
  const redisDelivery = { delivery: { store: "redis" } };
  test("enabled with the Redis delivery store: loads, node and timings as given", () => {
    const c = ok(load(tcp4Only({ ...redisDelivery, cluster: { enabled: true, node: "gw-1", heartbeatMs: 1000, deadAfterMs: 4000 } })));
    expect(c.cluster).toEqual({ enabled: true, node: "gw-1", heartbeatMs: 1000, deadAfterMs: 4000 });
  });
  test("enabled without delivery.store redis: refused by path, saying what it needs", () => {
    expect(errorLines(load(tcp4Only({ cluster: { enabled: true } })))).toEqual([
      'cluster.enabled: needs delivery.store "redis" (the nodes share inboxes and presence in it), got "sqlite"',
    ]);
    expect(errorLines(load(tcp4Only({ delivery: { store: "none" }, cluster: { enabled: true } })))).toEqual([
      'cluster.enabled: needs delivery.store "redis" (the nodes share inboxes and presence in it), got "none"',
    ]);
  });
  test("disabled: no rule applies, whatever the store", () => {
    expect(ok(load(tcp4Only({ cluster: { heartbeatMs: 5000, deadAfterMs: 5000 } }))).cluster.enabled).toBe(false);
  });
  test("deadAfterMs under two heartbeats: refused", () => {
    expect(errorLines(load(tcp4Only({ ...redisDelivery, cluster: { enabled: true, heartbeatMs: 3000, deadAfterMs: 5000 } })))).toEqual([
      "cluster.deadAfterMs: expected at least 2 × cluster.heartbeatMs (6000) so one late heartbeat is no death, got 5000",
    ]);
  });
  test("a node name with braces or spaces, or timings out of range: refused by path", () => {
    expect(errorLines(load(tcp4Only({ ...redisDelivery, cluster: { enabled: true, node: "a{b}" } })))).toEqual([
      'cluster.node: expected a node name without braces or white space, got "a{b}"',
    ]);
    expect(errorLines(load(tcp4Only({ ...redisDelivery, cluster: { enabled: true, node: "a b" } })))).toEqual([
      'cluster.node: expected a node name without braces or white space, got "a b"',
    ]);
    expect(errorLines(load(tcp4Only({ ...redisDelivery, cluster: { enabled: true, heartbeatMs: 10 } })))).toEqual([
      `cluster.heartbeatMs: expected an integer 50-${D.MAX_TIMER_MS}, got 10`,
    ]);
  });
});
