/**
 * `bester bench` through the real CLI: the report's shape and its accounting
 * (every message sent arrives once), on a gateway the bench starts and on one
 * given by address. Correctness only: the figures themselves are not judged.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runCli, startGateway, tempDir } from "../_harness/gateway.ts";
import { ENGINE, RUNTIMES, type RuntimeName } from "../_harness/runtimes.ts";
import { startRedis } from "../_harness/redis.ts";
import { makeTestCertificate } from "../_harness/tls.ts";

const QUICK = ["--window", "8", "--duration", "1", "--warmup", "0", "--json", "--quiet"];

function expectAccounted(run: any) {
  expect(run.sent).toBeGreaterThan(0);
  expect(run.sent).toBe(run.received + run.lost);
  expect(run.lost).toBe(0);
  expect(run.duplicated).toBe(0);
  expect(run.unexpected).toBe(0);
  expect(run.problems).toEqual([]);
}

export function benchSuite(runtime: RuntimeName) {
  describe(`${runtime}: bench`, () => {
    test(
      "--cluster 2: one gateway, then two on a Redis the bench starts, receivers on the other node; every message accounted for, the receivers' node and Redis measured",
      async () => {
        const { code, stdout, stderr } = await runCli(runtime, ["bench", "--cluster", "2", "--pairs", "2", ...QUICK], { timeoutMs: 90_000 });
        expect(stderr).not.toContain("lost or duplicated");
        expect(code).toBe(0);
        const report = JSON.parse(stdout);
        expect(report.runs.map((r: any) => r.scenario)).toEqual(["persistent", "persistent, cluster of 2"]);
        for (const run of report.runs) expectAccounted(run);
        expect(report.runs[0].cluster).toBeUndefined();
        const cluster = report.runs[1].cluster;
        expect(cluster.nodes).toBe(2);
        expect(cluster.receiverGateway.cpuSeconds).toBeGreaterThan(0);
        expect(cluster.redis.cpuSeconds).toBeGreaterThanOrEqual(0);
        const usage = await runCli(runtime, ["bench", "--cluster", "2", "--mode", "dummy", ...QUICK]);
        expect(usage.code).toBe(2);
        expect(usage.stderr).toContain("--cluster runs the persistent scenario only");
      },
      120_000,
    );

    test(
      "every scenario on a gateway it starts: the JSON report accounts for every message",
      async () => {
        const { code, stdout, stderr } = await runCli(runtime, ["bench", "--mode", "all", "--pairs", "1", "--size", "100", ...QUICK], { timeoutMs: 90_000 });
        expect(stderr).not.toContain("lost or duplicated");
        expect(code).toBe(0);
        const report = JSON.parse(stdout);
        expect(report.bester).toMatch(/^\d+\.\d+\.\d+/);
        expect(report.gateway).toEqual({ started: true, listener: "tcp4" });
        expect(report.machine.cpus).toBeGreaterThanOrEqual(1);
        // The bench on Bun starts itself again with the allocator setting serve uses (README, "Running");
        // on Deno (run with --allow-all, so FFI is allowed) it trims glibc's free memory as serve does.
        const delay = process.env.MIMALLOC_PURGE_DELAY ?? "1000";
        expect(report.settings).toEqual(ENGINE[runtime] === "bun" ? { MIMALLOC_PURGE_DELAY: delay } : { malloc_trim: "every 30 s" });
        expect(typeof report.processes).toBe("string");
        expect(report.runs.map((r: any) => r.scenario)).toEqual(["dummy", "per-message", "persistent"]);
        for (const run of report.runs) {
          expectAccounted(run);
          expect(run).toMatchObject({ pairs: 1, size: 100, window: 8, durationSeconds: 1, warmupSeconds: 0 });
          expect(typeof run.messagesPerSecond).toBe("number");
          for (const key of ["p50", "p90", "p99", "max"]) expect(typeof run.latencyMs[key]).toBe("number");
          expect(run.latencyMs.p50).toBeLessThanOrEqual(run.latencyMs.p99);
          expect(run.latencyMs.p99).toBeLessThanOrEqual(run.latencyMs.max);
          // The gateway the bench started: its CPU and peak RSS are read from /proc.
          expect(run.gateway.pid).toBeGreaterThan(0);
          expect(run.gateway.peakRssKiB).toBeGreaterThan(0);
          expect(typeof run.gateway.cpuSeconds).toBe("number");
          expect(typeof run.loadGenerator.cpuSeconds).toBe("number");
          if (run.scenario === "dummy") {
            expect(run.handler).toBeNull();
          } else {
            expect(run.handler.peakRssKiB).toBeGreaterThan(0);
            // Every relayed message got its "good" status report too.
            expect(run.accepted).toBe(run.sent);
          }
        }
      },
      120_000,
    );

    test(
      "--messages bounds each sender; several pairs; 4 KiB data",
      async () => {
        const { code, stdout } = await runCli(
          runtime,
          ["bench", "--mode", "persistent", "--pairs", "2", "--size", "4096", "--messages", "50", "--window", "8", "--duration", "30", "--warmup", "0", "--json", "-q"],
          { timeoutMs: 90_000 },
        );
        expect(code).toBe(0);
        const [run] = JSON.parse(stdout).runs;
        expectAccounted(run);
        expect(run.sent).toBe(100);
        expect(run.received).toBe(100);
        // Stopped by the count, long before the 30 s.
        expect(run.measuredSeconds).toBeLessThan(30);
      },
      120_000,
    );

    test(
      "--connect: a running gateway with the relay handler; its resources are n/a",
      async () => {
        const [program, ...pre] = RUNTIMES[runtime];
        const gw = await startGateway(runtime, {
          handlers: {
            availableTypes: ["relay"],
            typeMap: {
              relay: { handlerBinary: program, handlerArgs: [...pre, "bench", "handler"], unixDomainSocketPath: "relay.sock", mode: "persistent" },
            },
          },
        });
        try {
          const address = `${(gw.tcp4 as { host: string }).host}:${(gw.tcp4 as { port: number }).port}`;
          const { code, stdout } = await runCli(
            runtime,
            ["bench", "--connect", address, "--mode", "persistent,dummy", "--pairs", "2", ...QUICK],
            { timeoutMs: 90_000 },
          );
          expect(code).toBe(0);
          const report = JSON.parse(stdout);
          expect(report.gateway).toEqual({ started: false, address });
          expect(report.runs.map((r: any) => r.scenario)).toEqual(["persistent", "dummy"]);
          for (const run of report.runs) {
            expectAccounted(run);
            expect(run.gateway).toBeNull();
            expect(run.handler).toBeNull();
          }
          // The text report says n/a rather than inventing figures.
          const text = await runCli(runtime, ["bench", "--connect", address, "--mode", "dummy", "--window", "4", "--duration", "0.5", "--warmup", "0", "-q"], { timeoutMs: 60_000 });
          expect(text.code).toBe(0);
          expect(text.stdout).toContain("n/a");
        } finally {
          await gw.stop();
        }
      },
      120_000,
    );

    test(
      "--connect with --ca: a gateway whose listener speaks TLS; --tls without --connect is a usage mistake",
      async () => {
        const cert = makeTestCertificate(tempDir());
        const gw = await startGateway(runtime, {
          network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0, tls: { certFile: cert.cert, keyFile: cert.key } } },
        });
        try {
          const address = `127.0.0.1:${(gw.tcp4 as { port: number }).port}`;
          const { code, stdout } = await runCli(runtime, ["bench", "--connect", address, "--ca", cert.ca, "--mode", "dummy", ...QUICK], {
            timeoutMs: 90_000,
          });
          expect(code).toBe(0);
          const report = JSON.parse(stdout);
          expect(report.gateway).toEqual({ started: false, address, tls: true });
          expectAccounted(report.runs[0]);
          // Plain frames to the TLS port log nobody in: the bench says so and fails.
          const plain = await runCli(runtime, ["bench", "--connect", address, "--mode", "dummy", ...QUICK], { timeoutMs: 90_000 });
          expect(plain.code).toBe(1);
        } finally {
          await gw.stop();
        }
        const usage = await runCli(runtime, ["bench", "--tls", "--mode", "dummy", ...QUICK]);
        expect(usage.code).toBe(2);
        expect(usage.stderr).toContain("--tls and --ca are for --connect to a TCP address");
      },
      120_000,
    );

    test(
      "--idle N logs in N idle clients and reports the gateway's RSS",
      async () => {
        const { code, stdout } = await runCli(runtime, ["bench", "--idle", "50", "--json", "-q"], { timeoutMs: 90_000 });
        expect(code).toBe(0);
        const { idle } = JSON.parse(stdout);
        expect(idle).toMatchObject({ requested: 50, connected: 50, failed: 0, droppedAfterLogin: 0 });
        expect(idle.gateway.rssAfterKiB).toBeGreaterThan(0);
        expect(typeof idle.gateway.bytesPerConnection).toBe("number");
      },
      120_000,
    );

    test(
      "--ws: the relay over WebSocket clients accounts for every message; --idle N --ws; --connect takes a ws:// URL",
      async () => {
        const started = await runCli(runtime, ["bench", "--ws", "--mode", "persistent,dummy", "--pairs", "2", "--size", "4096", ...QUICK], { timeoutMs: 90_000 });
        expect(started.code).toBe(0);
        const report = JSON.parse(started.stdout);
        expect(report.gateway).toEqual({ started: true, listener: "ws" });
        for (const run of report.runs) {
          expectAccounted(run);
          expect(run.gateway.peakRssKiB).toBeGreaterThan(0);
        }
        expect(report.runs[0].accepted).toBe(report.runs[0].sent);

        const idle = await runCli(runtime, ["bench", "--idle", "40", "--ws", "--json", "-q"], { timeoutMs: 90_000 });
        expect(idle.code).toBe(0);
        const idleReport = JSON.parse(idle.stdout);
        expect(idleReport.idle).toMatchObject({ requested: 40, connected: 40, failed: 0, droppedAfterLogin: 0 });
        expect(idleReport.processes).toContain("WebSockets");

        const gw = await startGateway(runtime, { network: { types: ["tcp4", "ws"], ws: { port: 0 } } });
        try {
          const { code, stdout } = await runCli(runtime, ["bench", "--connect", gw.ws!, "--mode", "dummy", ...QUICK], { timeoutMs: 90_000 });
          expect(code).toBe(0);
          const viaUrl = JSON.parse(stdout);
          expect(viaUrl.gateway).toEqual({ started: false, address: gw.ws });
          expectAccounted(viaUrl.runs[0]);
          const mistaken = await runCli(runtime, ["bench", "--ws", "--connect", "127.0.0.1:1", "--mode", "dummy"]);
          expect(mistaken.code).toBe(2);
          expect(mistaken.stderr).toContain("--ws with --connect needs the WebSocket listener's URL");
        } finally {
          await gw.stop();
        }
      },
      180_000,
    );

    test(
      "--replay N: N messages queued for a user who is away, each reported queued, all replayed at its login; acknowledging; on Redis with --redis",
      async () => {
        const expectReplay = (stdout: string, ack: boolean) => {
          const { replay } = JSON.parse(stdout);
          expect(replay).toMatchObject({ messages: 40, size: 100, acknowledged: ack });
          expect(replay.rounds).toHaveLength(5);
          for (const r of replay.rounds) {
            expect(r.firstMs).toBeGreaterThan(0);
            expect(r.lastMs).toBeGreaterThanOrEqual(r.firstMs);
            expect(r.queueMs).toBeGreaterThan(0);
          }
          expect(replay.rounds.map((r: any) => r.lastMs)).toContain(replay.median.lastMs);
        };
        const plain = await runCli(runtime, ["bench", "--replay", "40", "--json", "-q"], { timeoutMs: 90_000 });
        expect(plain.stderr).toBe("");
        expect(plain.code).toBe(0);
        expectReplay(plain.stdout, false);
        // Acknowledging: each round acknowledges what it got, so the next starts from an empty inbox (else it would see 80).
        const acked = await runCli(runtime, ["bench", "--replay", "40", "--ack", "--json", "-q"], { timeoutMs: 90_000 });
        expect(acked.code).toBe(0);
        expectReplay(acked.stdout, true);
        const redis = await startRedis();
        try {
          const onRedis = await runCli(runtime, ["bench", "--replay", "40", "--ack", "--redis", `127.0.0.1:${redis.port}`, "--json", "-q"], { timeoutMs: 90_000 });
          expect(onRedis.code).toBe(0);
          expectReplay(onRedis.stdout, true);
          // The messages went through that Redis, under a prefix of the bench's own.
          expect(redis.cli("KEYS", "bester-bench-*")).toContain("{u:bench-g0}");
          const text = await runCli(runtime, ["bench", "--replay", "10", "--redis", `127.0.0.1:${redis.port}`, "-q"], { timeoutMs: 90_000 });
          expect(text.code).toBe(0);
          expect(text.stdout).toContain("replay of 10 queued messages of 100 B at a login (original session), median of 5 rounds");
        } finally {
          await redis.stop();
        }
        const both = await runCli(runtime, ["bench", "--replay", "10", "--idle", "10"]);
        expect(both.code).toBe(2);
        expect(both.stderr).toContain("--replay and --idle");
        const connected = await runCli(runtime, ["bench", "--redis", "127.0.0.1:6379", "--connect", "127.0.0.1:1"]);
        expect(connected.code).toBe(2);
        expect(connected.stderr).toContain("--redis is for the gateway the bench starts");
      },
      180_000,
    );

    test("usage mistakes exit 2 and name the flag", async () => {
      const a = await runCli(runtime, ["bench", "--mode", "fast"]);
      expect(a.code).toBe(2);
      expect(a.stderr).toContain("unknown scenario 'fast'");
      const b = await runCli(runtime, ["bench", "--pairs", "0"]);
      expect(b.code).toBe(2);
      expect(b.stderr).toContain("--pairs");
      const c = await runCli(runtime, ["bench", "--connect", "127.0.0.1:1", "--cpu-prof", join("tmp", "x")]);
      expect(c.code).toBe(2);
      const help = await runCli(runtime, ["bench", "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("Usage: bester bench");
    });
  });
}
