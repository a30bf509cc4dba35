/** The rate ring of the status page, and its sampler's timer under both runtimes. */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { join } from "node:path";
import fc from "fast-check";
import { type Counters, RATE_COUNTERS, RateHistory } from "../../src/server/rate-history.ts";
import { ROOT } from "../_harness/runtimes.ts";

const zero: Counters = Object.fromEntries(RATE_COUNTERS.map((n) => [n, 0])) as Counters;
const counters = (patch: Partial<Counters>): Counters => ({ ...zero, ...patch });

describe("RateHistory", () => {
  test("one sample makes no rate; two make one, per second", () => {
    const h = new RateHistory(10);
    expect(h.points()).toEqual([]);
    h.record(1_000, counters({ messagesIn: 100, badReports: 3 }));
    expect(h.points()).toEqual([]);
    h.record(3_000, counters({ messagesIn: 110, badReports: 4 }));
    expect(h.points()).toEqual([{ ...zero, at: new Date(3_000).toISOString(), seconds: 2, messagesIn: 5, badReports: 0.5 }]);
  });

  test("a full ring keeps the newest samples, oldest first", () => {
    const h = new RateHistory(4);
    for (let i = 1; i <= 10; i++) h.record(i * 1000, counters({ delivered: i * i }));
    // Samples 7..10 are kept: rates 8²-7², 9²-8², 10²-9².
    expect(h.points().map((p) => [p.at, p.delivered])).toEqual([
      [new Date(8000).toISOString(), 15],
      [new Date(9000).toISOString(), 17],
      [new Date(10000).toISOString(), 19],
    ]);
  });

  test("a counter that went down reads 0, and an interval of no time is left out", () => {
    const h = new RateHistory(5);
    h.record(1000, counters({ authFailures: 9 }));
    h.record(2000, counters({ authFailures: 4 }));
    h.record(2000, counters({ authFailures: 6 }));
    expect(h.points()).toEqual([{ ...zero, at: new Date(2000).toISOString(), seconds: 1 }]);
  });

  test("the ring is copied from, not shared with, the caller's object", () => {
    const h = new RateHistory(3);
    const c = counters({ messagesIn: 1 });
    h.record(0, c);
    c.messagesIn = 1000;
    h.record(1000, c);
    expect(h.points()[0]!.messagesIn).toBe(999);
  });

  test("a capacity below 2 is refused", () => {
    expect(() => new RateHistory(1)).toThrow("capacity: expected an integer >= 2, got 1");
    expect(() => new RateHistory(2.5)).toThrow(RangeError);
  });

  test("any run of samples: the rates of the last `capacity` ones, in order (property)", () => {
    const run = fc.array(fc.record({ dt: fc.integer({ min: 1, max: 5000 }), add: fc.nat({ max: 1e6 }) }), { maxLength: 40 });
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), run, (capacity, steps) => {
        const h = new RateHistory(capacity);
        const all: Array<{ at: number; n: number }> = [];
        let at = 0;
        let n = 0;
        for (const s of steps) {
          at += s.dt;
          n += s.add;
          all.push({ at, n });
          h.record(at, counters({ connectionsOpened: n }));
        }
        const kept = all.slice(-capacity);
        const expected = kept.slice(1).map((s, i) => ({
          at: new Date(s.at).toISOString(),
          rate: Math.round(((s.n - kept[i]!.n) / ((s.at - kept[i]!.at) / 1000)) * 1000) / 1000,
        }));
        expect(h.points().map((p) => ({ at: p.at, rate: p.connectionsOpened }))).toEqual(expected);
      }),
    );
  });
});

describe("sampleRates", () => {
  // A process whose only pending work is the sampler's timer must still end.
  const script = `
    import { RateHistory, sampleRates } from ${JSON.stringify(join(ROOT, "src/server/rate-history.ts"))};
    const h = new RateHistory(3);
    let n = 0;
    sampleRates(h, () => ({ messagesIn: n++, delivered: 0, badReports: 0, handlerFailures: 0, authFailures: 0, connectionsOpened: 0, connectionErrors: 0 }), 60_000, () => false);
    console.log("sampled", n);
  `;
  const runtimes: Record<string, string[]> = {
    bun: [join(ROOT, "node_modules/.bin/bun"), "--eval", script],
    deno: [join(ROOT, "node_modules/.bin/deno"), "eval", "--ext=ts", script],
  };
  for (const [name, argv] of Object.entries(runtimes)) {
    test(`${name}: samples once at once, and its timer does not keep the process alive`, async () => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const code = await new Promise<number | null>((resolve) => {
        // A timer that held the process would hold it for a minute; 30 s is far past a start.
        const limit = setTimeout(() => (child.kill("SIGKILL"), resolve(null)), 30_000);
        child.on("exit", (c) => (clearTimeout(limit), resolve(c)));
      });
      expect({ code, out: out.trim() }).toEqual({ code: 0, out: "sampled 1" });
    }, 40_000);
  }
});
