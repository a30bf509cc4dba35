import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeJsonFrame, FrameDecoder, type FrameError } from "../../src/protocol/frame.ts";
import { ANSWER_DATA_PATHS, CLIENT_DATA_PATHS } from "../../src/protocol/messages.ts";
import type { CutPaths } from "../../src/protocol/json-cut.ts";
import { nestsDeeperThan, shortestDeeperThan } from "../../src/protocol/json-depth.ts";

/** The depth of a value as the test sees it, by walking the built value (independent of the scanner). */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (value !== null && typeof value === "object") return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

const nested = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);

/** Strings full of what looks like structure: brackets, quotes and backslashes. */
const tricky = fc.string({ unit: fc.constantFrom("[", "]", "{", "}", '"', "\\", "a", " ", "\u00e9", "\n") });
const values = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small" }, tricky, fc.integer(), fc.constant(null), tie("array"), tie("object")),
  array: fc.array(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(tricky, tie("value"), { maxKeys: 4 }),
})).value;

describe("nestsDeeperThan", () => {
  test("agrees with the depth of the value JSON.parse builds, whatever the strings hold", () => {
    fc.assert(
      fc.property(values, fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value);
        expect(nestsDeeperThan(text, max)).toBe(depthOf(JSON.parse(text)) > max);
      }),
      { numRuns: 2000 },
    );
  });

  test("exactly at the limit passes, one more does not; a long string of brackets is no nesting", () => {
    expect(nestsDeeperThan(nested(64), 64)).toBe(false);
    expect(nestsDeeperThan(nested(65), 64)).toBe(true);
    expect(nestsDeeperThan(`{"a":${nested(3)},"b":{"c":[${nested(61)}]}}`, 64)).toBe(false);
    expect(nestsDeeperThan(`{"a":${nested(3)},"b":{"c":[${nested(62)}]}}`, 64)).toBe(true);
    expect(nestsDeeperThan(JSON.stringify({ s: "[".repeat(10_000) + '\\"' + "{".repeat(100) }), 2)).toBe(false);
    // Escaped quotes and backslashes before a closing quote, in short and long strings.
    for (const s of ['\\', '\\"', 'x\\\\', '"'.repeat(40), '\\'.repeat(41)]) {
      expect(nestsDeeperThan(JSON.stringify([s, [[["["]]]]), 4)).toBe(false);
      expect(nestsDeeperThan(JSON.stringify([s, [[[["["]]]]]), 4)).toBe(true);
    }
  });

  test("no text shorter than shortestDeeperThan(max) nests deeper than max", () => {
    for (const max of [0, 1, 5, 128]) {
      const shortest = nested(max + 1, "");
      expect(shortest.length).toBe(shortestDeeperThan(max));
      expect(nestsDeeperThan(shortest, max)).toBe(true);
    }
  });

  test("a 100,000-deep text is judged without recursion", () => {
    expect(nestsDeeperThan(nested(100_000), 128)).toBe(true);
    expect(nestsDeeperThan(nested(100_000), 100_000)).toBe(false);
  });
});

describe("FrameDecoder maxDepth", () => {
  function decode(text: string, options: { maxDepth?: number; keepAsText?: CutPaths } = {}) {
    const values: unknown[] = [];
    const decoder = new FrameDecoder(1 << 24, (v) => values.push(v), options);
    const err = decoder.push(encodeJsonFrame(text));
    return { values, err };
  }

  test("a frame deeper than the limit is too_deep, named by its index, before it is parsed", () => {
    const { values, err } = decode(nested(100_000), { maxDepth: 128 });
    expect(values).toEqual([]);
    expect(err?.code).toBe("too_deep");
    expect(err?.frame).toBe(1);
    expect(err?.message).toBe("frame 1 nests arrays and objects deeper than 128 levels");
  });

  test("a frame exactly at the limit is delivered; long frames (the cut path) are judged too", () => {
    expect(decode(nested(128), { maxDepth: 128 }).values).toEqual([JSON.parse(nested(128))]);
    const long = (depth: number) =>
      JSON.stringify({ header: {}, payload: { type: "t", id: "1", data: { pad: "x".repeat(2000), deep: JSON.parse(nested(depth)) } } });
    // payload (2) + data (1) + deep: the frame nests depth + 3.
    expect(decode(long(125), { maxDepth: 128, keepAsText: CLIENT_DATA_PATHS }).err).toBeUndefined();
    expect(decode(long(126), { maxDepth: 128, keepAsText: CLIENT_DATA_PATHS }).err?.code).toBe("too_deep");
  });

  test("long frames (the cut, which reads the depth on its way) and short ones agree with the depth of the value, on either answer path", () => {
    const depthOfFrame = (frame: unknown) => depthOf(frame);
    fc.assert(
      fc.property(values, values, fc.boolean(), fc.integer({ min: 0, max: 8 }), fc.constantFrom(...ANSWER_DATA_PATHS), (header, data, long, max, path) => {
        const pad = long ? "p".repeat(1100) : "";
        const frame = path.length === 1 ? { header, data, pad } : { header, payload: { type: "t", id: "1", data, pad } };
        const text = JSON.stringify(frame);
        const { values: got, err } = decode(text, { maxDepth: max, keepAsText: ANSWER_DATA_PATHS });
        if (depthOfFrame(frame) > max) {
          expect(err?.code).toBe("too_deep");
        } else {
          expect(err).toBeUndefined();
          expect(JSON.stringify(got[0])).toBe(text);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("without maxDepth nothing is judged; with onBadBody a too deep frame is skipped and the next one delivered", () => {
    expect(decode(nested(1000)).err).toBeUndefined();
    const values: unknown[] = [];
    const bad: FrameError[] = [];
    const decoder = new FrameDecoder(1 << 20, (v) => values.push(v), { maxDepth: 8, onBadBody: (e) => bad.push(e) });
    const chunk = new Uint8Array([...encodeJsonFrame(nested(9)), ...encodeJsonFrame('"after"')]);
    expect(decoder.push(chunk)).toBeUndefined();
    expect(bad.map((e) => [e.code, e.frame])).toEqual([["too_deep", 1]]);
    expect(values).toEqual(["after"]);
  });
});
