import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { concat } from "../_harness/bytes.ts";
import { encodeJsonFrame } from "../../src/protocol/frame.ts";
import { OutBuffer } from "../../src/protocol/out-buffer.ts";


/** The oldest queued bytes as a view: what writeTo offers a writer first, taken by none. */
function peek(out: OutBuffer): Uint8Array {
  let view: Uint8Array = new Uint8Array(0);
  out.writeTo({
    write(bytes, start, end) {
      view = bytes.subarray(start, end);
      return 0;
    },
  });
  return view;
}

describe("OutBuffer", () => {
  test("a frame pushed as text is byte for byte the encoded frame", () => {
    for (const text of ['{"a":1}', '"héllo ✓ 😀"', JSON.stringify("x".repeat(40_000)), "{}"]) {
      const out = new OutBuffer();
      out.pushFrame(text);
      expect([...peek(out)]).toEqual([...encodeJsonFrame(text)]);
      expect(out.bytes).toBe(encodeJsonFrame(text).length);
    }
  });

  test("an empty buffer holds nothing and peeks empty", () => {
    const out = new OutBuffer();
    expect(out.empty).toBe(true);
    expect(peek(out).length).toBe(0);
    expect(out.takeAll().length).toBe(0);
  });

  test("takeAll hands the bytes over: later pushes do not touch them", () => {
    const out = new OutBuffer();
    out.pushFrame('{"first":true}');
    const taken = out.takeAll();
    const copy = [...taken];
    expect(out.empty).toBe(true);
    for (let i = 0; i < 100; i++) out.pushFrame('{"later":"' + "y".repeat(200) + '"}');
    expect([...taken]).toEqual(copy);
  });

  test("bytes waiting for a slow reader stay where they are while later frames queue behind them", () => {
    const out = new OutBuffer();
    const big = JSON.stringify("w".repeat(6000));
    for (let i = 0; i < 2; i++) out.pushFrame(big);
    out.consume(100);
    const waiting = peek(out);
    const before = new Uint8Array(waiting);
    // Far more than any one block holds: later frames must chain, not move the backlog.
    for (let i = 0; i < 200; i++) out.pushFrame(big);
    const now = peek(out);
    expect(now.buffer).toBe(waiting.buffer);
    expect(now.byteOffset).toBe(waiting.byteOffset);
    expect([...now.subarray(0, before.length)]).toEqual([...before]);
    expect(out.bytes).toBe(202 * encodeJsonFrame(big).length - 100);
    out.clear();
  });

  test("any sequence of pushes, partial consumes, takes and frames keeps the byte stream exact", () => {
    const op = fc.oneof(
      // Sizes drawn explicitly: fast-check's own arrays stay small, and the
      // interesting paths (compaction, growth past a block) need kilobytes.
      fc.record({
        kind: fc.constant("bytes" as const),
        data: fc.tuple(fc.nat(9000), fc.nat(255)).map(([n, b]) => Uint8Array.from({ length: n }, (_, i) => (b + i) & 0xff)),
      }),
      fc.record({
        kind: fc.constant("frame" as const),
        parts: fc.boolean(),
        cut: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        text: fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.tuple(fc.nat(7000), fc.string({ unit: "grapheme", minLength: 1, maxLength: 4 })).map(([n, s]) => s.repeat(n)),
        ),
      }),
      fc.record({ kind: fc.constant("consume" as const), share: fc.double({ min: 0, max: 1, noNaN: true }) }),
      fc.record({ kind: fc.constant("take" as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const out = new OutBuffer();
        const expected: Uint8Array[] = [];
        const written: Uint8Array[] = [];
        for (const o of ops) {
          if (o.kind === "bytes") {
            out.push(o.data);
            expected.push(o.data);
          } else if (o.kind === "frame") {
            const text = JSON.stringify(o.text);
            // In one part, or cut into three, as the gateway writes reports.
            // Never inside a surrogate pair: each part must be well-formed on its own.
            const whole = (at: number) => (/[\udc00-\udfff]/.test(text[at] ?? "") ? at + 1 : at);
            const cut1 = whole(Math.floor(text.length * o.cut[0]));
            const cut2 = whole(cut1 + Math.floor((text.length - cut1) * o.cut[1]));
            if (o.parts) out.pushFrame(text.slice(0, cut1), text.slice(cut1, cut2), text.slice(cut2));
            else out.pushFrame(text);
            expected.push(encodeJsonFrame(text));
          } else if (o.kind === "take") {
            const all = out.takeAll();
            expect(out.empty).toBe(true);
            written.push(all);
          } else {
            const view = peek(out);
            const n = Math.floor(view.length * o.share);
            written.push(new Uint8Array(view.subarray(0, n))); // a copy: the block is a Buffer, whose slice is a view
            out.consume(n);
          }
        }
        // Drained as a socket writer does: peek, write it all, until empty.
        let left = out.bytes;
        while (!out.empty) {
          const view = peek(out);
          expect(view.length).toBeGreaterThan(0);
          written.push(new Uint8Array(view));
          out.consume(view.length);
          left -= view.length;
        }
        expect(left).toBe(0);
        expect(peek(out).length).toBe(0);
        expect(Buffer.from(concat(written)).equals(Buffer.from(concat(expected)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
  test("writeTo offers the blocks in order, drops what the writer took, and stops when it takes less", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 70_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 20 }),
        (chunks, limits) => {
          const out = new OutBuffer();
          for (const c of chunks) out.push(c);
          const all = concat(chunks);
          const written: Uint8Array[] = [];
          let turn = 0;
          // A writer that takes at most limits[turn] bytes per call (a socket under back-pressure), copying what it takes.
          const writer = {
            write(bytes: Uint8Array, start: number, end: number): number {
              const n = Math.min(end - start, limits[turn % limits.length]!);
              written.push(bytes.slice(start, start + n));
              return n;
            },
          };
          for (let i = 0; i < 200 && !out.empty; i++, turn++) {
            const done = out.writeTo(writer);
            expect(done).toBe(out.empty);
          }
          const sent = concat(written);
          expect(sent.length + out.bytes).toBe(all.length);
          expect([...sent]).toEqual([...all.subarray(0, sent.length)]);
        },
      ),
      { numRuns: 60 },
    );
  });
});
