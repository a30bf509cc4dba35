import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FrameDecoder, FrameError } from "../../src/protocol/frame.ts";
import { CUT_MIN_CHARS, parseCut, RawJson } from "../../src/protocol/json-cut.ts";

const CLIENT = [["payload", "data"]] as const;
const ANSWER = [["data"], ["payload", "data"]] as const;

/** Serialises `value` with the given whitespace between tokens, as any client may. */
function spaced(value: unknown, ws: () => string): string {
  if (Array.isArray(value)) return "[" + ws() + value.map((v) => spaced(v, ws)).join(ws() + "," + ws()) + ws() + "]";
  if (value !== null && typeof value === "object") {
    const members = Object.entries(value).map(([k, v]) => JSON.stringify(k) + ws() + ":" + ws() + spaced(v, ws));
    return "{" + ws() + members.join(ws() + "," + ws()) + ws() + "}";
  }
  return JSON.stringify(value);
}

const whitespace = fc.array(fc.constantFrom("", "", "", " ", "\n", "\t", "\r\n  "), { minLength: 64, maxLength: 64 });
const spacer = (spaces: string[]) => {
  let n = 0;
  return () => spaces[n++ % spaces.length]!;
};

/** JSON.parse's value and the cut's, compared as JSON text (a RawJson serialises as its value). */
function sameAsParse(text: string, cut: unknown): void {
  expect(JSON.stringify(cut)).toBe(JSON.stringify(JSON.parse(text)));
}

/** A client frame around `data`, with decoys: an earlier data member, and strings that look like structure. */
function clientFrame(data: unknown, other: unknown, ws: () => string, escapedKey: boolean): string {
  const dataKey = escapedKey ? '"d\\u0061ta"' : '"data"';
  return (
    ws() + '{"header":' + spaced(other, ws) + "," + ws() + '"payload"' + ws() + ":" + ws() + "{" + ws() +
    '"type":"t","data":' + spaced(other, ws) + "," + ws() + dataKey + ws() + ":" + ws() + spaced(data, ws) +
    ws() + ',"id":' + spaced(other, ws) + ws() + "}" + ws() + "}" + ws()
  );
}

describe("parseCut", () => {
  test("gives JSON.parse's value, with the member as checked text that parses to the same", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), whitespace, fc.boolean(), (data, other, spaces, escapedKey) => {
        const text = clientFrame(data, other, spacer(spaces), escapedKey);
        const cut = parseCut(text, CLIENT) as { payload: { data: unknown } } | undefined;
        // An escaped key is not recognised (the decoy before it is found instead):
        // the placeholder check sends the text to JSON.parse, never cut wrong.
        if (escapedKey) return expect(cut).toBeUndefined();
        sameAsParse(text, cut);
        expect(cut!.payload.data).toBeInstanceOf(RawJson);
        expect(JSON.stringify((cut!.payload.data as RawJson).value())).toBe(JSON.stringify(JSON.parse(text).payload.data));
      }),
      { numRuns: 2000 },
    );
  });

  test("never accepts what JSON.parse refuses, nor gives another value (texts mutated a character at a time)", () => {
    const significant = fc.constantFrom('"', "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "\u0001", "\u001f", "u", "0", "9", "-", "+", ".", "e", "t", "n", "x", "\u00e9", "\ud83d", "\ude00");
    const mutation = fc.record({ at: fc.nat(), kind: fc.constantFrom("insert", "delete", "replace"), char: significant });
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), whitespace, fc.array(mutation, { minLength: 1, maxLength: 3 }), (data, other, spaces, mutations) => {
        let text = clientFrame(data, other, spacer(spaces), false);
        for (const m of mutations) {
          const at = m.at % (text.length + 1);
          if (m.kind === "insert") text = text.slice(0, at) + m.char + text.slice(at);
          else if (m.kind === "delete") text = text.slice(0, at) + text.slice(at + 1);
          else text = text.slice(0, at) + m.char + text.slice(at + 1);
        }
        let parsed: unknown;
        let valid = true;
        try {
          parsed = JSON.parse(text);
        } catch {
          valid = false;
        }
        for (const paths of [CLIENT, ANSWER]) {
          const cut = parseCut(text, paths);
          if (cut === undefined) continue;
          expect(valid).toBe(true);
          expect(JSON.stringify(cut)).toBe(JSON.stringify(parsed));
        }
      }),
      { numRuns: 5000 },
    );
  });

  test("strings: every escape JSON allows, and nothing else; control characters only escaped", () => {
    const good = ['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9", "\\uD83D\\uDE00", "\\ud800", "é😀", "}{][,:"];
    const bad = ["\\x", "\\u12G4", "\\u12", "\\", "\u0000", "\u001f", "\t", "\n", "\\U0041", "\\'"];
    const long = "x".repeat(100); // past the character-by-character stretch, into the indexOf and regular-expression path
    for (const pad of ["", long]) {
      for (const s of good) {
        const text = `{"payload":{"data":{"s":"${pad}${s}${pad}","k${s}":1}}}`;
        const cut = parseCut(text, CLIENT) as { payload: { data: RawJson } };
        expect(cut.payload.data.text).toBe(`{"s":"${pad}${s}${pad}","k${s}":1}`);
        sameAsParse(text, cut);
      }
      for (const s of bad) {
        const text = `{"payload":{"data":{"s":"${pad}${s}${pad}"}}}`;
        expect(() => JSON.parse(text)).toThrow();
        expect(parseCut(text, CLIENT)).toBeUndefined();
      }
    }
  });

  test("numbers and literals: the grammar, exactly", () => {
    for (const n of ["0", "-0", "12", "-12.5", "1e3", "1E+30", "0.5e-3", "1e400", "true", "false", "null"]) {
      const text = `{"payload":{"data":[${n}, ${n}]}}`;
      sameAsParse(text, parseCut(text, CLIENT));
    }
    for (const n of ["01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "Infinity", "NaN", "tru", "nul", "True", "1 2", "--1"]) {
      const text = `{"payload":{"data":[${n}]}}`;
      expect(() => JSON.parse(text)).toThrow();
      expect(parseCut(text, CLIENT)).toBeUndefined();
    }
  });

  test("a repeated member: the last counts, as in JSON.parse; a later payload without data leaves nothing to cut", () => {
    const twice = '{"payload":{"data":"first","data":"second"}}';
    expect(((parseCut(twice, CLIENT) as any).payload.data as RawJson).text).toBe('"second"');
    const later = '{"payload":{"data":"first"},"payload":{"type":"t"}}';
    expect(parseCut(later, CLIENT)).toBeUndefined();
    const escapedLast = '{"payload":{"data":"first","d\\u0061ta":"second"}}';
    expect(parseCut(escapedLast, CLIENT)).toBeUndefined();
  });

  test("answers: top-level data first, else the early spec's payload.data", () => {
    const both = '{"header":{"status":"0"},"payload":{"data":[1]},"data":{"x":2}}';
    const cut = parseCut(both, ANSWER) as any;
    expect(cut.data).toBeInstanceOf(RawJson);
    expect(cut.data.text).toBe('{"x":2}');
    expect(cut.payload.data).toEqual([1]);
    const early = '{"header":{"status":"0","command":"sendClients","commandData":["a"]},"payload":{"data":[1, 2]}}';
    expect((parseCut(early, ANSWER) as any).payload.data.text).toBe("[1, 2]");
    expect(parseCut('{"header":{"status":"0"}}', ANSWER)).toBeUndefined();
    expect(parseCut('{"payload":[{"data":1}]}', ANSWER)).toBeUndefined();
    expect(parseCut("[1]", ANSWER)).toBeUndefined();
  });

  test("nesting deeper than the cut goes is left to JSON.parse", () => {
    const deep = "[".repeat(300) + "]".repeat(300);
    const text = `{"payload":{"data":${deep}}}`;
    expect(parseCut(text, CLIENT)).toBeUndefined();
    expect(() => JSON.parse(text)).not.toThrow();
  });

  test("a RawJson serialises as the value it stands for, not as its own fields", () => {
    const raw = new RawJson('{ "a" : [1, 2.50] }');
    expect(JSON.stringify({ data: raw })).toBe('{"data":{"a":[1,2.5]}}');
    expect(raw.value()).toEqual({ a: [1, 2.5] });
  });
});

describe("FrameDecoder with keepAsText", () => {
  function frame(text: string): Uint8Array {
    const body = new TextEncoder().encode(text);
    const out = new Uint8Array(4 + body.length);
    new DataView(out.buffer).setUint32(0, body.length, true);
    out.set(body, 4);
    return out;
  }
  const pad = "p".repeat(CUT_MIN_CHARS);

  test("a long frame's data arrives as checked text; a short frame's as a value", () => {
    const got: unknown[] = [];
    const decoder = new FrameDecoder(1 << 20, (value) => got.push(value), { keepAsText: CLIENT });
    const long = `{"payload":{"type":"t","id":"1","data":{"pad":"${pad}","n":1.50}}}`;
    const short = '{"payload":{"type":"t","id":"2","data":{"n":1.50}}}';
    expect(decoder.push(frame(long))).toBeUndefined();
    expect(decoder.push(frame(short))).toBeUndefined();
    const [a, b] = got as any[];
    expect(a.payload.data).toBeInstanceOf(RawJson);
    expect(a.payload.data.text).toBe(`{"pad":"${pad}","n":1.50}`);
    expect(a.payload.id).toBe("1");
    expect(b.payload.data).toEqual({ n: 1.5 });
  });

  test("a long frame that is not JSON fails as JSON.parse says, and one that is JSON but has no data is built whole", () => {
    const got: unknown[] = [];
    const decoder = new FrameDecoder(1 << 20, (value) => got.push(value), { keepAsText: CLIENT });
    const bad = `{"payload":{"type":"t","id":"1","data":{"pad":"${pad}\u0001"}}}`;
    let reason = "";
    try {
      JSON.parse(bad);
    } catch (e) {
      reason = (e as Error).message;
    }
    const err = decoder.push(frame(bad));
    expect(err).toBeInstanceOf(FrameError);
    expect(err!.code).toBe("invalid_json");
    expect(err!.message).toBe(`frame 1 is not valid JSON: ${reason}`);
    const other = new FrameDecoder(1 << 20, (value) => got.push(value), { keepAsText: CLIENT });
    const noData = `{"payload":{"type":"t","id":"1","pad":"${pad}"}}`;
    expect(other.push(frame(noData))).toBeUndefined();
    expect(got).toEqual([JSON.parse(noData)]);
  });
});
