/**
 * How deep a JSON text nests, found before it is parsed: engines parse and
 * serialise nested values recursively, so a value nested deep enough costs a
 * stack overflow (and the time to unwind it) wherever it is built or written
 * again. A frame is refused before that can happen.
 * @module
 */

const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_ARRAY = 91;
const CLOSE_ARRAY = 93;
const OPEN_OBJECT = 123;
const CLOSE_OBJECT = 125;

/** Strings up to this long are stepped over character by character: cheaper than a call to `indexOf`. */
const SHORT_STRING = 32;

/**
 * The shortest text that can nest deeper than `max`: every level takes an
 * opening and a closing bracket, so anything shorter need not be read.
 */
export function shortestDeeperThan(max: number): number {
  return 2 * (max + 1);
}

/**
 * Whether `text` opens more than `max` arrays and objects inside one another.
 * Brackets inside strings do not count, as JSON reads them. For a text that
 * is not JSON the answer may be either; JSON.parse then says what is wrong.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  const end = text.length;
  let depth = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return false;
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    }
  }
  return false;
}

/** `i` is an opening quote; the index of the quote that closes it, or -1 when none does. */
function stringEnd(text: string, i: number): number {
  const stop = Math.min(text.length, i + 1 + SHORT_STRING);
  for (let k = i + 1; k < stop; k++) {
    const c = text.charCodeAt(k);
    if (c === QUOTE) return k;
    if (c === BACKSLASH) k++;
  }
  let from = stop;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    // A quote after an odd number of backslashes is escaped.
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if ((backslashes & 1) === 0) return quote;
    from = quote + 1;
  }
}
