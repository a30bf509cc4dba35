/**
 * The checks and quoting every reader of untrusted values uses: what counts
 * as a JSON object, and how a received value is quoted in an error message.
 * @module
 */

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** How many characters of a value an error message quotes. */
export const MAX_QUOTED_CHARS = 40;

/**
 * A received value as error messages quote it: its JSON, cut at `max`
 * characters (ending "...") without serialising the rest of a big value;
 * "nothing" for a missing one.
 */
export function quote(value: unknown, max = MAX_QUOTED_CHARS): string {
  if (value === undefined) return "nothing";
  let out = "";
  const put = (text: string): boolean => {
    out += text;
    return out.length <= max;
  };
  const write = (x: unknown): boolean => {
    if (typeof x === "string") return put(JSON.stringify(x.length > max ? x.slice(0, max) : x));
    if (x === null || typeof x === "number" || typeof x === "boolean") return put(JSON.stringify(x));
    if (Array.isArray(x)) {
      if (!put("[")) return false;
      for (let i = 0; i < x.length; i++) {
        if ((i > 0 && !put(",")) || !write(x[i])) return false;
      }
      return put("]");
    }
    if (typeof x === "object") {
      if (!put("{")) return false;
      let first = true;
      for (const key in x) {
        if (!Object.hasOwn(x, key)) continue;
        if ((!first && !put(",")) || !put(`${JSON.stringify(key)}:`) || !write((x as Record<string, unknown>)[key])) return false;
        first = false;
      }
      return put("}");
    }
    // Not JSON (undefined inside, function, bigint): only reachable from in-process callers.
    return put(typeof x === "bigint" ? `${x}n` : typeof x);
  };
  write(value);
  return out.length <= max ? out : `${out.slice(0, max - 3)}...`;
}
