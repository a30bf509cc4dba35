import { describe, expect, test } from "bun:test";
import { formatIssue, type LoadResult, validateConfig } from "../../src/config/load.ts";
import { redactConfig } from "../../src/config/redact.ts";
import type { Config } from "../../src/config/types.ts";
import { normaliseIp, parseServerAddress } from "../../src/config/server-address.ts";
import { encodeFrame, FrameDecoder, type FrameError } from "../../src/protocol/frame.ts";

const SECRET = "0123456789abcdef-shared";
const base = (federation: unknown) => ({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0 } }, federation });
const load = (federation: unknown) => validateConfig(base(federation), "/etc/bester/server.conf");

function ok(r: LoadResult): Config {
  if (!r.ok) throw new Error(`expected a valid config, got:\n${r.errors.map(formatIssue).join("\n")}`);
  return r.config;
}
function errors(r: LoadResult): string[] {
  if (r.ok) throw new Error("expected the config to be refused");
  return r.errors.map(formatIssue);
}

describe("server addresses", () => {
  test("host:port and [ipv6]:port, canonical keys", () => {
    expect(parseServerAddress("127.0.0.1:2220")).toEqual({ host: "127.0.0.1", port: 2220, ipv6: false, key: "127.0.0.1:2220" });
    expect(parseServerAddress("[0:0:0::1]:2221")).toEqual({ host: "::1", port: 2221, ipv6: true, key: "[::1]:2221" });
    expect(parseServerAddress("Chat.Example.org:7")?.key).toBe("chat.example.org:7");
  });

  test("anything else is not an address", () => {
    for (const bad of ["127.0.0.1", "::1:2221", "[::1]", "[zz::1]:1", "host:0", "host:65536", "a b:1", "", 42, null, "unix:/x"]) {
      expect(parseServerAddress(bad)).toBeUndefined();
    }
  });

  test("IPv4-mapped IPv6 compares as IPv4", () => {
    expect(normaliseIp("::ffff:127.0.0.1")).toBe("127.0.0.1");
    expect(normaliseIp("0:0::1")).toBe("::1");
    expect(normaliseIp("10.0.0.5")).toBe("10.0.0.5");
  });
});

describe("the federation block", () => {
  test("absent: no peers, defaults for the timeouts and hops", () => {
    expect(ok(validateConfig(base(undefined), "/x/server.conf")).federation).toEqual({
      peers: {},
      allowOriginal: [],
      connectTimeoutMs: 3_000,
      replyTimeoutMs: 10_000,
      maxHops: 4,
    });
  });

  test("peers with secrets and original peers, addresses made canonical", () => {
    const c = ok(
      load({
        name: "a",
        peers: { b: { address: "[0::1]:2231", secret: SECRET }, old: { address: "10.0.0.5:2220", original: true }, c: { secret: SECRET } },
        allowOriginal: ["::ffff:10.0.0.5", "10.0.0.5"],
        maxHops: 2,
      }),
    );
    expect({ ...c.federation.peers }).toEqual({
      b: { name: "b", address: "[::1]:2231", secret: SECRET, original: false, tls: false },
      old: { name: "old", address: "10.0.0.5:2220", original: true, tls: false },
      c: { name: "c", secret: SECRET, original: false, tls: false },
    });
    expect(c.federation.allowOriginal).toEqual(["10.0.0.5"]);
    expect(c.federation.maxHops).toBe(2);
  });

  test("a peer dialled with TLS: its CA file resolves beside the config; tls needs an address, caFile needs tls", () => {
    const c = ok(load({ name: "a", peers: { b: { address: "127.0.0.1:2230", secret: SECRET, tls: true, caFile: "peers/b-ca.pem" } } }));
    expect(c.federation.peers.b).toMatchObject({ tls: true, caFile: "/etc/bester/peers/b-ca.pem" });
    expect(errors(load({ name: "a", peers: { b: { secret: SECRET, tls: true }, c: { address: "127.0.0.1:1", secret: SECRET, caFile: "x.pem" } } }))).toEqual([
      "federation.peers.b.tls: needs an address: tls is how this server dials the peer",
      "federation.peers.c.caFile: only used with TLS; set tls to true, or remove it",
    ]);
  });

  test("every problem is named by its path", () => {
    // With a top-level error present, only the top-level errors are reported;
    // alone, every peer's own problem is.
    const badPeers = {
      nosecret: { address: "127.0.0.1:1" },
      short: { secret: "tooshort" },
      both: { address: "127.0.0.1:2", secret: SECRET, original: true },
      dup: { address: "127.0.0.1:2", secret: SECRET },
      lost: { original: true },
    };
    expect(
      errors(
        load({
          peers: badPeers,
          allowOriginal: ["localhost"],
          maxHops: 0,
        }),
      ),
    ).toEqual([
      'federation.allowOriginal[0]: expected an IPv4 or IPv6 address, got "localhost"',
      "federation.maxHops: expected an integer 1-32, got 0",
    ]);
    expect(
      errors(
        load({
          peers: badPeers,
        }),
      ),
    ).toEqual([
      'federation.peers.nosecret.secret: required (a shared secret, the same in both servers\' configs), unless the peer is an original server ("original": true)',
      "federation.peers.short.secret: expected at least 16 characters, got 8",
      'federation.peers.both.secret: an original peer sends and takes no credentials; remove the secret or "original": true',
      "federation.peers.dup.address: same address as federation.peers.both.address (127.0.0.1:2)",
      "federation.peers.lost.address: required for an original peer (it is only dialled; to accept one, list its IP in federation.allowOriginal)",
      "federation.name: required because federation.peers.short has a secret: peers know this server by its name",
    ]);
    expect(errors(load({ peers: { b: { address: "b.example:x", secret: SECRET } } }))).toEqual([
      'federation.peers.b.address: expected a server address HOST:PORT or [IPV6]:PORT, got "b.example:x"',
    ]);
  });

  test("redactConfig hides peer secrets", () => {
    const c = ok(load({ name: "a", peers: { b: { address: "127.0.0.1:9", secret: SECRET } } }));
    expect(JSON.stringify(redactConfig(c))).not.toContain(SECRET);
    expect((redactConfig(c) as Config).federation.peers.b!.secret).toBe("***");
    expect(c.federation.peers.b!.secret).toBe(SECRET);
  });
});

describe("FrameDecoder with onBadBody", () => {
  const raw = (text: string) => {
    const body = new TextEncoder().encode(text);
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length, true);
    out.set(body, 4);
    return out;
  };

  test("a body that is not JSON is reported and the next frame still decodes, at every split", () => {
    const stream = new Uint8Array([...encodeFrame(1), ...raw("{nope"), ...raw(""), ...new Uint8Array([2, 0, 0, 0, 0xc3, 0x28]), ...encodeFrame(2)]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const got: unknown[] = [];
      const bad: string[] = [];
      const d = new FrameDecoder(64, (v) => got.push(v), { onBadBody: (e: FrameError) => bad.push(e.code) });
      expect(d.push(stream.subarray(0, cut))).toBeUndefined();
      expect(d.push(stream.subarray(cut))).toBeUndefined();
      expect(got).toEqual([1, 2]);
      expect(bad).toEqual(["invalid_json", "invalid_json", "invalid_utf8"]);
    }
  });

  test("a frame above the limit still fails the decoder", () => {
    const d = new FrameDecoder(8, () => {}, { onBadBody: () => {} });
    expect(d.push(raw("[1,2,3,4,5,6]"))?.code).toBe("frame_too_large");
  });

  test("without onBadBody a bad body fails the decoder, as before", () => {
    const d = new FrameDecoder(64, () => {});
    expect(d.push(raw("{nope"))?.code).toBe("invalid_json");
    expect(d.push(encodeFrame(1))?.code).toBe("invalid_json");
  });
});
