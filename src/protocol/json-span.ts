/**
 * Finds the source text of a member of a JSON object, in text JSON.parse has
 * already accepted, so the gateway can pass a large `data` on as it arrived
 * instead of serialising the parsed value again. Only structure is read:
 * string contents are jumped over with `indexOf`, so the cost grows with the
 * number of tokens before and inside the member, not with the size of the
 * strings in it.
 * @module
 */

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipSpace(text: string, at: number): number {
  while (isSpace(text.charCodeAt(at))) at++;
  return at;
}

/** `at` is an opening quote; returns the index after the closing one. */
function skipString(text: string, at: number): number {
  let from = at + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    // A quote preceded by an odd number of backslashes is escaped.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if ((backslashes & 1) === 0) return quote + 1;
    from = quote + 1;
  }
}

/** `at` is the first character of a value; returns the index after it. */
function skipValue(text: string, at: number): number {
  const c = text.charCodeAt(at);
  if (c === QUOTE) return skipString(text, at);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    let i = at;
    for (;;) {
      const ch = text.charCodeAt(i);
      if (ch === QUOTE) {
        i = skipString(text, i);
        continue;
      }
      if (ch === OPEN_OBJECT || ch === OPEN_ARRAY) depth++;
      else if ((ch === CLOSE_OBJECT || ch === CLOSE_ARRAY) && --depth === 0) return i + 1;
      i++;
    }
  }
  // A number, true, false or null: runs to the next delimiter.
  let i = at;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === COMMA || ch === CLOSE_OBJECT || ch === CLOSE_ARRAY || isSpace(ch)) break;
    i++;
  }
  return i;
}

/**
 * The span [start, end) of member `key`'s value in the object starting at
 * `at`, or undefined when the value there is not an object or has no such
 * member. A repeated key yields its last occurrence, as JSON.parse keeps the last.
 */
function memberSpan(text: string, at: number, key: string): [number, number] | undefined {
  if (text.charCodeAt(at) !== OPEN_OBJECT) return undefined;
  let found: [number, number] | undefined;
  let i = skipSpace(text, at + 1);
  if (text.charCodeAt(i) === CLOSE_OBJECT) return undefined;
  for (;;) {
    const keyEnd = skipString(text, i);
    let name = text.slice(i + 1, keyEnd - 1);
    if (name.includes("\\")) name = JSON.parse(text.slice(i, keyEnd)) as string;
    // Past the colon, to the value.
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = skipValue(text, start);
    if (name === key) found = [start, end];
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== COMMA) return found;
    i = skipSpace(text, i + 1);
  }
}

/**
 * The source text of the value at `path` (member names, from the top-level
 * object down) in `text`, which must be JSON that JSON.parse accepted. The
 * result parses to exactly the value JSON.parse put at that path. Undefined
 * when a step is missing or is not an object.
 */
export function memberText(text: string, path: readonly string[]): string | undefined {
  let start = skipSpace(text, 0);
  let end = -1;
  for (const key of path) {
    const span = memberSpan(text, start, key);
    if (span === undefined) return undefined;
    [start, end] = span;
  }
  return end < 0 ? undefined : text.slice(start, end);
}
