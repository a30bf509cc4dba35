import { describe, test, expect } from "bun:test";
import fc from "fast-check";
import { concat } from "../_harness/bytes.ts";
import { Buffer } from "node:buffer";
import { encodeFrame, encodeJsonFrame, FrameDecoder, FrameError, FRAME_HEADER_BYTES } from "../../src/protocol/frame.ts";

const MiB = 1024 * 1024;


function header(length: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, length, true);
  return h;
}

function rawFrame(body: Uint8Array | number[]): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  return concat([header(b.length), b]);
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/** A decoder that records what it delivers. */
function recorder(max = MiB) {
  const values: unknown[] = [];
  const indices: number[] = [];
  const decoder = new FrameDecoder(max, (value, index) => {
    values.push(value);
    indices.push(index);
  });
  return { decoder, values, indices };
}

/** Chunks of `bytes` cut at the given positions (taken modulo length + 1; repeats give empty chunks). */
function cut(bytes: Uint8Array, positions: number[]): Uint8Array[] {
  const points = positions.map((p) => p % (bytes.length + 1)).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

/**
 * Pushes each chunk through one scratch buffer that is scribbled over after every push,
 * as a runtime reusing its read buffer would: a decoder that keeps a view instead of a copy fails.
 */
function feed(decoder: FrameDecoder, chunks: Uint8Array[], afterPush?: (err: FrameError | undefined) => void) {
  const scratch = new Uint8Array(Math.max(1, ...chunks.map((c) => c.length)));
  let first: FrameError | undefined;
  for (const c of chunks) {
    scratch.set(c);
    const err = decoder.push(scratch.subarray(0, c.length));
    scratch.fill(0xaa);
    afterPush?.(err);
    first ??= err;
  }
  return first;
}

/** Straightforward whole-buffer decoder to compare the streaming one against. */
function reference(bytes: Uint8Array, max: number) {
  const values: unknown[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  let frame = 0;
  while (bytes.length - at >= 4) {
    const length = view.getUint32(at, true);
    frame++;
    if (length > max) return { values, error: { code: "frame_too_large", frame }, buffered: 0 };
    if (bytes.length - at - 4 < length) break;
    const body = bytes.slice(at + 4, at + 4 + length);
    at += 4 + length;
    if (length === 0) return { values, error: { code: "invalid_json", frame }, buffered: 0 };
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    } catch {
      return { values, error: { code: "invalid_utf8", frame }, buffered: 0 };
    }
    try {
      values.push(JSON.parse(text));
    } catch {
      return { values, error: { code: "invalid_json", frame }, buffered: 0 };
    }
  }
  return { values, error: undefined, buffered: bytes.length - at };
}

const sample = [
  { header: { scope: "client" }, payload: { type: "chat", id: "m-1", data: "héllo ✓ 😀" } },
  null,
  42,
  "",
  [1, [2, [3]], { "ключ": "значение" }],
];

const anyJson = fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: "grapheme" }), fc.jsonValue({ stringUnit: "binary" }));

describe("encodeFrame", () => {
  test("writes the UTF-8 byte length little-endian, then the JSON", () => {
    const frame = encodeFrame({ s: "x".repeat(300) });
    const json = JSON.stringify({ s: "x".repeat(300) });
    expect(Array.from(frame.subarray(0, 4))).toEqual([json.length & 0xff, json.length >> 8, 0, 0]);
    expect(new TextDecoder().decode(frame.subarray(FRAME_HEADER_BYTES))).toBe(json);
  });

  test("counts bytes, not characters, for non-ASCII text", () => {
    for (const s of ["é", "✓", "😀", "a\u{10FFFF}b", "\ud800"]) {
      const frame = encodeJsonFrame(s);
      const body = utf8(s);
      expect(Array.from(frame)).toEqual(Array.from(rawFrame(body)));
    }
  });

  test("encodeJsonFrame frames the text as given", () => {
    expect(Array.from(encodeJsonFrame('{"a":1}'))).toEqual([7, 0, 0, 0, ...utf8('{"a":1}')]);
    expect(Array.from(encodeJsonFrame(""))).toEqual([0, 0, 0, 0]);
  });

  test("throws TypeError for values JSON cannot carry", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    for (const bad of [undefined, () => 1, Symbol("s"), 10n, cyclic, { big: 1n }]) {
      expect(() => encodeFrame(bad)).toThrow(TypeError);
    }
  });
});

describe("FrameDecoder", () => {
  const stream = concat(sample.map((v) => encodeFrame(v)));

  test("round trip in one chunk, with 1-based indices", () => {
    const { decoder, values, indices } = recorder();
    expect(decoder.push(stream)).toBeUndefined();
    expect(values).toEqual(sample);
    expect(indices).toEqual([1, 2, 3, 4, 5]);
    expect(decoder.buffered).toBe(0);
    expect(decoder.failed).toBeUndefined();
  });

  test("every single cut position", () => {
    for (let i = 0; i <= stream.length; i++) {
      const { decoder, values, indices } = recorder();
      expect(feed(decoder, [stream.subarray(0, i), stream.subarray(i)])).toBeUndefined();
      expect(values).toEqual(sample);
      expect(indices).toEqual([1, 2, 3, 4, 5]);
      expect(decoder.buffered).toBe(0);
    }
  });

  test("every pair of cut positions", () => {
    const short = concat([encodeFrame({ a: "é" }), encodeFrame([1, 2]), encodeFrame("😀")]);
    for (let i = 0; i <= short.length; i++) {
      for (let j = i; j <= short.length; j++) {
        const { decoder, values } = recorder();
        expect(feed(decoder, cut(short, [i, j]))).toBeUndefined();
        expect(values).toEqual([{ a: "é" }, [1, 2], "😀"]);
      }
    }
  });

  test("one byte at a time", () => {
    const { decoder, values } = recorder();
    const chunks = Array.from(stream, (_, i) => stream.subarray(i, i + 1));
    const seen: number[] = [];
    expect(feed(decoder, chunks, () => seen.push(decoder.buffered))).toBeUndefined();
    expect(values).toEqual(sample);
    expect(Math.max(...seen)).toBeLessThan(Math.max(...sample.map((v) => encodeFrame(v).length)));
  });

  test("empty chunks change nothing", () => {
    const { decoder, values } = recorder();
    expect(decoder.push(new Uint8Array(0))).toBeUndefined();
    expect(decoder.push(stream.subarray(0, 2))).toBeUndefined();
    expect(decoder.push(new Uint8Array(0))).toBeUndefined();
    expect(decoder.buffered).toBe(2);
    expect(decoder.push(stream.subarray(2))).toBeUndefined();
    expect(values).toEqual(sample);
  });

  test("buffered counts the header and body bytes of the incomplete frame", () => {
    const frame = encodeFrame({ hello: "world" });
    const { decoder, values } = recorder();
    decoder.push(frame.subarray(0, 3));
    expect(decoder.buffered).toBe(3);
    decoder.push(frame.subarray(3, 10));
    expect(decoder.buffered).toBe(10);
    decoder.push(frame.subarray(10, frame.length - 1));
    expect(decoder.buffered).toBe(frame.length - 1);
    decoder.push(frame.subarray(frame.length - 1));
    expect(decoder.buffered).toBe(0);
    expect(values).toEqual([{ hello: "world" }]);
  });

  test("keeps a copy of a partial frame, since the caller may reuse its chunk", () => {
    const frame = encodeFrame({ k: "value" });
    const { decoder, values } = recorder();
    for (const split of [2, 7]) {
      const chunk = frame.slice(0, split);
      decoder.push(chunk);
      chunk.fill(0);
      decoder.push(frame.slice(split));
    }
    expect(values).toEqual([{ k: "value" }, { k: "value" }]);
  });

  test("a large frame arriving in many small chunks", () => {
    const big = { blob: "ab".repeat(150_000), n: 1 };
    const frame = encodeFrame(big);
    const { decoder, values } = recorder();
    for (let at = 0; at < frame.length; at += 997) {
      expect(decoder.push(frame.subarray(at, at + 997))).toBeUndefined();
      expect(decoder.buffered).toBe(Math.min(at + 997, frame.length) % frame.length);
    }
    expect(values).toEqual([big]);
  });

  test("a length exactly at the limit is accepted", () => {
    const body = utf8('"' + "x".repeat(98) + '"');
    const { decoder, values } = recorder(100);
    expect(decoder.push(rawFrame(body))).toBeUndefined();
    expect(values).toEqual(["x".repeat(98)]);
  });

  test("an oversized length is reported from the header alone, without the body", () => {
    const { decoder, values } = recorder(MiB);
    const good = concat([encodeFrame("one"), encodeFrame("two")]);
    expect(decoder.push(good)).toBeUndefined();
    const err = decoder.push(header(5_000_000));
    expect(err).toBeInstanceOf(FrameError);
    expect(err?.name).toBe("FrameError");
    expect(err?.code).toBe("frame_too_large");
    expect(err?.frame).toBe(3);
    expect(err?.message).toBe("frame 3 declares 5000000 bytes, above the limit of 1048576");
    expect(decoder.buffered).toBe(0);
    expect(decoder.failed).toBe(err);
    expect(values).toEqual(["one", "two"]);
  });

  test("an oversized length split across chunks is reported when the 4th header byte arrives", () => {
    const { decoder } = recorder(100);
    const h = header(101);
    expect(decoder.push(h.subarray(0, 1))).toBeUndefined();
    expect(decoder.push(h.subarray(1, 3))).toBeUndefined();
    const err = decoder.push(h.subarray(3));
    expect(err?.code).toBe("frame_too_large");
    expect(err?.message).toBe("frame 1 declares 101 bytes, above the limit of 100");
  });

  test("the largest declarable length is read unsigned", () => {
    const { decoder } = recorder(MiB);
    expect(decoder.push(header(0xffff_ffff))?.message).toBe("frame 1 declares 4294967295 bytes, above the limit of 1048576");
  });

  test("invalid UTF-8 inside a string", () => {
    const { decoder, values } = recorder();
    const bad = rawFrame([0x22, 0xc3, 0x28, 0x22]);
    const err = decoder.push(concat([encodeFrame(1), bad]));
    expect(err?.code).toBe("invalid_utf8");
    expect(err?.frame).toBe(2);
    expect(err?.message).toBe("frame 2 is not valid UTF-8");
    expect(values).toEqual([1]);
  });

  test("invalid UTF-8 in a frame that arrived in pieces", () => {
    const { decoder } = recorder();
    const bad = rawFrame([0x22, 0xc3, 0x28, 0x22]);
    expect(decoder.push(bad.subarray(0, 6))).toBeUndefined();
    expect(decoder.push(bad.subarray(6))?.code).toBe("invalid_utf8");
  });

  test("invalid JSON names the frame and the parser's reason", () => {
    const { decoder } = recorder();
    const err = decoder.push(rawFrame(utf8('{"a":')));
    expect(err?.code).toBe("invalid_json");
    expect(err?.frame).toBe(1);
    expect(err?.message.startsWith("frame 1 is not valid JSON: ")).toBe(true);
    expect(err?.message.length).toBeGreaterThan("frame 1 is not valid JSON: ".length);
    expect(err?.cause).toBeInstanceOf(SyntaxError);
  });

  test("an empty frame is invalid JSON", () => {
    const { decoder, values } = recorder();
    const err = decoder.push(concat([encodeFrame("a"), header(0), encodeFrame("b")]));
    expect(err?.code).toBe("invalid_json");
    expect(err?.message).toBe("frame 2 is not valid JSON: empty frame");
    expect(values).toEqual(["a"]);
  });

  test("frames before the bad one in the same chunk are delivered; nothing after it, ever", () => {
    const { decoder, values, indices } = recorder();
    const chunk = concat([encodeFrame("a"), encodeFrame("b"), rawFrame(utf8("nope")), encodeFrame("c")]);
    const err = decoder.push(chunk);
    expect(err?.frame).toBe(3);
    expect(values).toEqual(["a", "b"]);
    expect(indices).toEqual([1, 2]);
    expect(decoder.push(encodeFrame("d"))).toBe(err);
    expect(decoder.push(new Uint8Array(0))).toBe(err);
    expect(decoder.failed).toBe(err);
    expect(values).toEqual(["a", "b"]);
    expect(decoder.buffered).toBe(0);
  });

  test("decoders with one onFrame but other limits each keep their own", () => {
    // Decoders told the same share their rules (frame.ts); told otherwise, they must not.
    const got: string[] = [];
    const onFrame = (value: unknown, _index: number, owner: unknown) => got.push(`${owner}:${JSON.stringify(value)}`);
    const plain = new FrameDecoder(1000, onFrame, { owner: "plain" });
    const small = new FrameDecoder(10, onFrame, { owner: "small" });
    const shallow = new FrameDecoder(1000, onFrame, { owner: "shallow", maxDepth: 1 });
    const text = new FrameDecoder(1000, onFrame, { owner: "text", asText: true });
    const plainToo = new FrameDecoder(1000, onFrame, { owner: "plainToo" });
    const frame = encodeFrame({ a: [[1]] });
    expect(plain.push(frame)).toBeUndefined();
    expect(small.push(frame)?.code).toBe("frame_too_large");
    expect(shallow.push(frame)?.code).toBe("too_deep");
    expect(text.push(frame)).toBeUndefined();
    expect(plainToo.push(frame)).toBeUndefined();
    expect(got).toEqual(['plain:{"a":[[1]]}', 'text:"{\\"a\\":[[1]]}"', 'plainToo:{"a":[[1]]}']);
  });

  test("rejects a limit that is not a non-negative number", () => {
    expect(() => new FrameDecoder(-1, () => {})).toThrow(RangeError);
    expect(() => new FrameDecoder(Number.NaN, () => {})).toThrow(RangeError);
  });
});

describe("FrameDecoder properties", () => {
  test("any JSON values, cut anywhere, decode to the same values in order", () => {
    fc.assert(
      fc.property(fc.array(anyJson, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (items, cuts) => {
        const bytes = concat(items.map((v) => encodeFrame(v)));
        const { decoder, values, indices } = recorder();
        expect(feed(decoder, cut(bytes, cuts))).toBeUndefined();
        // Compare with what JSON itself carries (-0 becomes 0, and so on).
        expect(values).toEqual(items.map((v) => JSON.parse(JSON.stringify(v))));
        expect(indices).toEqual(items.map((_, i) => i + 1));
        expect(decoder.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  // Byte streams that reach every branch: good frames, short and lying headers, bad UTF-8, noise.
  const segment = fc.oneof(
    anyJson.map((v) => encodeFrame(v)),
    fc.tuple(fc.nat({ max: 120 }), fc.uint8Array({ maxLength: 120 })).map(([n, body]) => concat([header(n), body])),
    fc.constant(rawFrame([0x22, 0xc3, 0x28, 0x22])),
    fc.constant(header(0)),
    fc.nat().map((n) => header(n)),
    fc.uint8Array({ maxLength: 12 }),
  );
  const streams = fc.tuple(
    fc.array(segment, { maxLength: 10 }).map(concat),
    fc.array(fc.nat(), { maxLength: 16 }),
    fc.oneof(fc.integer({ min: 0, max: 200 }), fc.constant(MiB)),
  );

  test("arbitrary bytes in arbitrary chunks: never throws, agrees with a whole-buffer decode, silent after an error", () => {
    fc.assert(
      fc.property(streams, ([bytes, cuts, max]) => {
        const { decoder, values, indices } = recorder(max);
        let error: FrameError | undefined;
        let deliveredAtError = -1;
        feed(decoder, cut(bytes, cuts), (err) => {
          if (err === undefined) {
            expect(error).toBeUndefined();
            return;
          }
          expect(err).toBeInstanceOf(FrameError);
          if (error === undefined) {
            error = err;
            deliveredAtError = values.length;
          }
          expect(err).toBe(error);
          expect(values.length).toBe(deliveredAtError);
        });
        const expected = reference(bytes, max);
        expect(values).toEqual(expected.values);
        expect(indices).toEqual(expected.values.map((_, i) => i + 1));
        const seen: { code: string; frame: number } | undefined = error && { code: error.code, frame: error.frame };
        expect(seen).toEqual(expected.error);
        expect(decoder.failed).toBe(error);
        expect(decoder.buffered).toBe(expected.buffered);
      }),
      { numRuns: 500 },
    );
  });

  test("Buffer chunks (what Bun's sockets deliver) decode exactly as Uint8Array chunks do", () => {
    fc.assert(
      fc.property(streams, ([bytes, cuts, max]) => {
        const plain = recorder(max);
        const fromBuffers = recorder(max);
        const errors: (string | undefined)[][] = [[], []];
        for (const chunk of cut(bytes, cuts)) {
          errors[0]!.push(plain.decoder.push(chunk)?.message);
          errors[1]!.push(fromBuffers.decoder.push(Buffer.from(chunk))?.message);
        }
        expect(fromBuffers.values).toEqual(plain.values);
        expect(errors[1]).toEqual(errors[0]!);
      }),
      { numRuns: 500 },
    );
  });

  test("a leading byte-order mark is dropped, from a Buffer or not; a second one is not", () => {
    const bom = [0xef, 0xbb, 0xbf];
    const body = [...bom, ...new TextEncoder().encode('{"a":1}')];
    for (const make of [(b: number[]) => new Uint8Array(b), (b: number[]) => Buffer.from(b)]) {
      const { decoder, values } = recorder(1024);
      expect(decoder.push(make([...header(body.length), ...body]))).toBeUndefined();
      expect(values).toEqual([{ a: 1 }]);
      const twice = recorder(1024);
      const err = twice.decoder.push(make([...header(body.length + 3), ...bom, ...body]));
      expect(err?.code).toBe("invalid_json");
    }
  });

  test("buffered never exceeds maxFrameBytes + 4", () => {
    fc.assert(
      fc.property(streams, ([bytes, cuts, max]) => {
        const { decoder } = recorder(max);
        feed(decoder, cut(bytes, cuts), () => {
          expect(decoder.buffered).toBeLessThanOrEqual(max + FRAME_HEADER_BYTES);
        });
      }),
      { numRuns: 500 },
    );
  });
});
