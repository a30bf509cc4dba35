import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { memberText } from "../../src/protocol/json-span.ts";

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
const key = fc.oneof(fc.constantFrom("data", "payload", "x"), fc.string());
const spacer = (spaces: string[]) => {
  let n = 0;
  return () => spaces[n++ % spaces.length]!;
};

describe("memberText", () => {
  test("finds the text of payload.data that parses to what JSON.parse put there", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), whitespace, fc.boolean(), (data, other, spaces, escapedKey) => {
        const ws = spacer(spaces);
        const dataKey = escapedKey ? '"d\\u0061ta"' : '"data"';
        // A decoy data member first: the last one is the one JSON.parse keeps.
        const text =
          ws() + '{"header":' + spaced(other, ws) + "," + ws() + '"payload"' + ws() + ":" + ws() + "{" + ws() +
          '"type":"t","data":' + spaced(other, ws) + "," + ws() + dataKey + ws() + ":" + ws() + spaced(data, ws) +
          ws() + ',"id":' + spaced(other, ws) + ws() + "}" + ws() + "}" + ws();
        const parsed = JSON.parse(text);
        const found = memberText(text, ["payload", "data"]);
        expect(found).toBeDefined();
        expect(JSON.parse(found!)).toEqual(parsed.payload.data);
      }),
      { numRuns: 1000 },
    );
  });

  test("any object: a member's text parses to JSON.parse's value for it, repeated keys included", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.jsonValue()), { maxLength: 8 }), key, whitespace, (members, wanted, spaces) => {
        const ws = spacer(spaces);
        const text = "{" + ws() + members.map(([k, v]) => JSON.stringify(k) + ws() + ":" + ws() + spaced(v, ws)).join("," + ws()) + ws() + "}";
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const found = memberText(text, [wanted]);
        if (Object.hasOwn(parsed, wanted)) expect(JSON.parse(found!)).toEqual(parsed[wanted]);
        else expect(found).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });

  test("strings full of quotes, backslashes and brackets are jumped over whole", () => {
    for (const s of ['a\\"b', "\\\\", '\\\\\\"', "}{][,:", "end\\\\"]) {
      const text = `{"x":"${s}","data":{"k":["${s}",1.5e3,true,null]},"y":"${s}"}`;
      expect(JSON.parse(memberText(text, ["data"])!)).toEqual(JSON.parse(text).data);
    }
  });

  test("a missing step, or a step that is not an object, yields undefined", () => {
    expect(memberText('{"payload":{"type":"t"}}', ["payload", "data"])).toBeUndefined();
    expect(memberText('{"payload":[1,2]}', ["payload", "data"])).toBeUndefined();
    expect(memberText('{"payload":"data"}', ["payload", "data"])).toBeUndefined();
    expect(memberText("[1]", ["data"])).toBeUndefined();
    expect(memberText("{}", ["data"])).toBeUndefined();
    expect(memberText('{"data":0}', ["data"])).toBe("0");
    expect(memberText('{"data":-1.5e+2 }', ["data"])).toBe("-1.5e+2");
  });
});
