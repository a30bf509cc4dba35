/**
 * Parses a large frame as JSON.parse would, except for one member (a
 * message's `data`), which is checked against the JSON grammar and kept as
 * its source text instead of being built. The gateway passes that text on
 * to the handler and to the receiver as it arrived, so it never needs the
 * value, and building it (a copy of every string in it) is most of what
 * parsing a large message costs.
 *
 * How, for a text T and a path such as payload.data:
 * 1. find where the member's value seems to be, [s, e), by reading only
 *    structure (strings are jumped over with `indexOf`);
 * 2. check that T[s, e) is one whole JSON value (a grammar check written for
 *    long strings: escapes and control characters are found with one
 *    regular expression, each character looked at a bounded number of times);
 * 3. JSON.parse the rest, T[0, s) + `"NONCE"` + T[e, end), with a string
 *    made of random letters (fixed per process, never sent) in place of the
 *    value, and require that string, as a whole value, at the path.
 * If 3 holds, the placeholder stood where a value stands, so T with the
 * member put back is JSON exactly when the member is a JSON value, which 2
 * checked; T's value is the rest's with the member in place. Step 1 may be
 * fooled by a text that is not JSON, never the whole: a text any step
 * refuses is left to JSON.parse (for its error message, or its value). A
 * text accepted here is accepted by JSON.parse with the same value
 * (property tests: test/unit/json-cut.test.ts).
 * @module
 */

/**
 * Frames shorter than this are parsed whole: below it, JSON.parse and
 * serialising the member again cost about what the cut does; above it the
 * cut's share of the work falls as the member grows (the figures:
 * docs/PERFORMANCE.md, "Large data is passed on as text").
 */
export const CUT_MIN_CHARS = 1024;

/** Which members to keep as text: paths of member names from the top-level object, the first present wins. */
export type CutPaths = readonly (readonly string[])[];

/** A JSON value kept as its checked source text. */
export class RawJson {
  constructor(readonly text: string) {}

  /** The value itself, built on demand (for the rare consumer that reads it). */
  value(): unknown {
    return JSON.parse(this.text);
  }

  /** Serialised as the value it stands for: a RawJson anywhere in a value stays correct JSON. */
  toJSON(): unknown {
    return this.value();
  }
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const MINUS = 45;
const PLUS = 43;
const DOT = 46;
const ZERO = 48;
const NINE = 57;
/** Nesting deeper than this is left to JSON.parse rather than risk the call stack. */
const MAX_DEPTH = 256;

/** What may not stand in a string unescaped, and what starts an escape. */
const SPECIAL = /[\\\u0000-\u001f]/g;

/** Letters only: outside quotes they are no JSON token, so the placeholder cannot be read as anything but a string. */
const NONCE = (() => {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  let s = "";
  for (const b of bytes) s += String.fromCharCode(97 + (b % 26));
  return s;
})();
const PLACEHOLDER = `"${NONCE}"`;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipSpace(text: string, i: number): number {
  while (isSpace(text.charCodeAt(i))) i++;
  return i;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

// ---------------------------------------------------------------------------
// Step 1: where a member seems to be (structure only; -1 or undefined when lost)

/**
 * Strings up to this long are read character by character: below it that is
 * cheaper than a call to `indexOf` or a regular expression, above it dearer.
 */
const SHORT_STRING = 32;

/** `i` is an opening quote; the index after the quote that seems to close it, or -1. */
function jumpString(text: string, i: number): number {
  const stop = Math.min(text.length, i + 1 + SHORT_STRING);
  for (let k = i + 1; k < stop; k++) {
    const c = text.charCodeAt(k);
    if (c === QUOTE) return k + 1;
    if (c === BACKSLASH) k++;
  }
  let from = i + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    // A quote after an odd number of backslashes is escaped.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if ((backslashes & 1) === 0) return quote + 1;
    from = quote + 1;
  }
}

/**
 * How many arrays and objects the value last read by jumpValue or checkValue
 * nests (0 for a string, number or literal), so that the reading of the text
 * the cut does anyway also says how deep it is.
 */
let valueDepth = 0;

/** `i` is the first character of a value; the index after it as far as brackets and quotes tell, or -1. */
function jumpValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  valueDepth = 0;
  if (c === QUOTE) return jumpString(text, i);
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    let deepest = 0;
    for (;;) {
      const ch = text.charCodeAt(i);
      if (ch !== ch) return -1; // NaN: past the end
      if (ch === QUOTE) {
        i = jumpString(text, i);
        if (i < 0) return -1;
        continue;
      }
      if (ch === OPEN_OBJECT || ch === OPEN_ARRAY) {
        if (++depth > deepest) deepest = depth;
      } else if ((ch === CLOSE_OBJECT || ch === CLOSE_ARRAY) && --depth === 0) {
        valueDepth = deepest;
        return i + 1;
      }
      i++;
    }
  }
  // A number or a literal: to the next delimiter.
  const start = i;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === COMMA || ch === CLOSE_OBJECT || ch === CLOSE_ARRAY || isSpace(ch)) break;
    i++;
  }
  return i > start ? i : -1;
}

/** Start and end of the last member `name` of the object at `at`, set by {@link memberAt}. */
let foundStart = -1;
let foundEnd = -1;
/** How deep the text read so far nests, counting the objects memberAt was given; set by {@link memberAt}. */
let deepest = 0;

/**
 * Whether the object at `at` seems to have a member `name`; its value's span
 * is left in foundStart/foundEnd (the last such member, as JSON.parse keeps
 * the last). With `check`, that value is also checked as JSON (step 2),
 * and a value that is not makes this false. A name spelt with escapes is not
 * recognised: the check of step 3 then fails and the text goes to
 * JSON.parse, correct if slower.
 */
function memberAt(text: string, at: number, name: string, check: boolean, level: number): boolean {
  if (text.charCodeAt(at) !== OPEN_OBJECT) return false;
  if (level > deepest) deepest = level;
  let found = false;
  let i = skipSpace(text, at + 1);
  if (text.charCodeAt(i) === CLOSE_OBJECT) return false;
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return false;
    const nameStart = i;
    const nameEnd = jumpString(text, i);
    if (nameEnd < 0) return false;
    i = skipSpace(text, nameEnd);
    if (text.charCodeAt(i) !== COLON) return false;
    const start = skipSpace(text, i + 1);
    const named = nameEnd - nameStart - 2 === name.length && text.startsWith(name, nameStart + 1);
    // The member itself is checked as it is found: one reading of it, not two.
    valueDepth = 0;
    const end = named && check ? checkValue(text, start, 0) : jumpValue(text, start);
    if (end < 0) return false;
    if (level + valueDepth > deepest) deepest = level + valueDepth;
    if (named) {
      found = true;
      foundStart = start;
      foundEnd = end;
    }
    i = skipSpace(text, end);
    if (text.charCodeAt(i) !== COMMA) return found;
    i = skipSpace(text, i + 1);
  }
}

// ---------------------------------------------------------------------------
// Step 2: the grammar check of one value

/** Where the next escape or control character at or after the last search is (text.length: none). */
let specialAt = -1;

/** `at` is a backslash in a string; the index after its escape, or -1 when it is not one JSON allows. */
function escapeEnd(text: string, at: number): number {
  const e = text.charCodeAt(at + 1);
  if (e === 117) {
    // \uXXXX
    for (let k = 2; k < 6; k++) if (!isHex(text.charCodeAt(at + k))) return -1;
    return at + 6;
  }
  return e === QUOTE || e === BACKSLASH || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116 ? at + 2 : -1;
}

/** `i` is an opening quote; the index after the closing one, or -1 when the string is not JSON. */
function checkString(text: string, i: number): number {
  const stop = Math.min(text.length, i + 1 + SHORT_STRING);
  for (let k = i + 1; k < stop; k++) {
    const c = text.charCodeAt(k);
    if (c === QUOTE) return k + 1;
    if (c < 32) return -1;
    if (c === BACKSLASH) {
      k = escapeEnd(text, k);
      if (k < 0) return -1;
      k--;
    }
  }
  let from = i + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    if (specialAt < from) {
      SPECIAL.lastIndex = from;
      specialAt = SPECIAL.test(text) ? SPECIAL.lastIndex - 1 : text.length;
    }
    if (specialAt > quote) return quote + 1;
    // An escape or a control character before the quote.
    if (text.charCodeAt(specialAt) !== BACKSLASH) return -1;
    from = escapeEnd(text, specialAt);
    if (from < 0) return -1;
  }
}

function checkNumber(text: string, i: number): number {
  let c = text.charCodeAt(i);
  if (c === MINUS) c = text.charCodeAt(++i);
  if (c === ZERO) c = text.charCodeAt(++i);
  else if (c > ZERO && c <= NINE) {
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  } else return -1;
  if (c === DOT) {
    c = text.charCodeAt(++i);
    if (!isDigit(c)) return -1;
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  }
  if (c === 101 || c === 69) {
    c = text.charCodeAt(++i);
    if (c === PLUS || c === MINUS) c = text.charCodeAt(++i);
    if (!isDigit(c)) return -1;
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  }
  return i;
}

/** `i` is the first character of a value; the index after it, or -1 when it is not JSON. */
function checkValue(text: string, i: number, depth: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return checkString(text, i);
  if (c === OPEN_OBJECT) {
    if (depth >= MAX_DEPTH) return -1;
    if (depth >= valueDepth) valueDepth = depth + 1;
    i = skipSpace(text, i + 1);
    if (text.charCodeAt(i) === CLOSE_OBJECT) return i + 1;
    for (;;) {
      if (text.charCodeAt(i) !== QUOTE) return -1;
      i = checkString(text, i);
      if (i < 0) return -1;
      i = skipSpace(text, i);
      if (text.charCodeAt(i) !== COLON) return -1;
      i = checkValue(text, skipSpace(text, i + 1), depth + 1);
      if (i < 0) return -1;
      i = skipSpace(text, i);
      const d = text.charCodeAt(i);
      if (d === CLOSE_OBJECT) return i + 1;
      if (d !== COMMA) return -1;
      i = skipSpace(text, i + 1);
    }
  }
  if (c === OPEN_ARRAY) {
    if (depth >= MAX_DEPTH) return -1;
    if (depth >= valueDepth) valueDepth = depth + 1;
    i = skipSpace(text, i + 1);
    if (text.charCodeAt(i) === CLOSE_ARRAY) return i + 1;
    for (;;) {
      i = checkValue(text, i, depth + 1);
      if (i < 0) return -1;
      i = skipSpace(text, i);
      const d = text.charCodeAt(i);
      if (d === CLOSE_ARRAY) return i + 1;
      if (d !== COMMA) return -1;
      i = skipSpace(text, i + 1);
    }
  }
  if (c === 116) return text.startsWith("true", i) ? i + 4 : -1;
  if (c === 102) return text.startsWith("false", i) ? i + 5 : -1;
  if (c === 110) return text.startsWith("null", i) ? i + 4 : -1;
  return checkNumber(text, i);
}

// ---------------------------------------------------------------------------
// Step 3, and the whole

/** What {@link parseCut} gives for a text that nests deeper than it was allowed to. */
export const TOO_DEEP: unique symbol = Symbol("too deep");

/**
 * The value JSON.parse gives for `text`, except that the member at the
 * first of `paths` the text has is a {@link RawJson}; undefined when the
 * text has none of them or is not JSON (JSON.parse then builds it, or says why).
 * Paths are member names from the top-level object, e.g. ["payload", "data"].
 * {@link TOO_DEEP}, without parsing, when the text leads to the member and
 * nests arrays and objects deeper than `maxDepth`: reading the top-level
 * object's members for the cut reads all of the text, so its depth comes free.
 */
export function parseCut(text: string, paths: CutPaths, maxDepth = Infinity): unknown {
  const top = skipSpace(text, 0);
  for (const path of paths) {
    specialAt = -1;
    deepest = 0;
    // The first path the text has is the one: the member is where it seemed, or the text is left to JSON.parse.
    if (leadsTo(text, top, path)) return deepest > maxDepth ? TOO_DEEP : cutAt(text, path, foundStart, foundEnd);
  }
  return undefined;
}

/** Whether `path` leads from the object at `at` to a member, whose checked span is left in foundStart/foundEnd. */
function leadsTo(text: string, at: number, path: readonly string[]): boolean {
  for (let k = 0; k < path.length; k++) {
    if (!memberAt(text, at, path[k]!, k === path.length - 1, k + 1)) return false;
    at = foundStart;
  }
  return true;
}

function cutAt(text: string, path: readonly string[], start: number, end: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text.slice(0, start) + PLACEHOLDER + text.slice(end));
  } catch {
    return undefined;
  }
  // Only an object member can hold the placeholder: anything else on the way reads as undefined.
  let holder = value as Record<string, unknown> | undefined;
  for (let k = 0; k < path.length - 1; k++) holder = holder?.[path[k]!] as Record<string, unknown> | undefined;
  const last = path[path.length - 1]!;
  if (typeof holder !== "object" || holder === null || holder[last] !== NONCE) return undefined;
  holder[last] = new RawJson(text.slice(start, end));
  return value;
}
