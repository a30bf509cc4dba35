/**
 * Where a JSON text first goes wrong, as line and column. Only consulted after
 * JSON.parse has failed: JavaScriptCore (Bun) reports no position at all and
 * V8 (Deno) words it differently, so one scanner gives the same answer on both.
 *
 * @module
 */

export interface JsonSyntaxError {
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units like the editor's column in most cases. */
  column: number;
  reason: string;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Stop {
  constructor(readonly offset: number, readonly reason: string) {}
}

const show = (c: string | undefined) => (c === undefined ? "the end of the text" : JSON.stringify(c));

/** The first syntax error in `text`, or null when it is valid JSON (or too deeply nested to scan). */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  let i = 0;
  const stop = (reason: string, at = i): never => {
    throw new Stop(at, reason);
  };
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const string = () => {
    const start = i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) stop("string is never closed", start);
      if (c === '"') return void i++;
      if (c! < " ") stop("control character inside a string (write \\n or \\t)");
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) stop("\\u must be followed by four hex digits");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else stop(`invalid escape \\${e ?? ""}`);
      } else i++;
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) return void (i = NUMBER.lastIndex);
    for (const word of ["true", "false", "null"]) if (text.startsWith(word, i)) return void (i += word.length);
    if (c === "'") stop("strings must be in double quotes");
    if (c === "/") stop("comments are not allowed in JSON");
    stop(`expected a value, found ${show(c)}`);
  };
  const object = () => {
    i++;
    space();
    if (text[i] === "}") return void i++;
    for (;;) {
      space();
      if (text[i] !== '"') stop(`expected a property name in double quotes, found ${show(text[i])}`);
      string();
      space();
      if (text[i] !== ":") stop(`expected ":" after the property name, found ${show(text[i])}`);
      i++;
      value();
      space();
      if (text[i] === "}") return void i++;
      if (text[i] !== ",") stop(`expected "," or "}" after a property value, found ${show(text[i])}`);
      i++;
      space();
      if (text[i] === "}") stop('trailing comma before "}"');
    }
  };
  const array = () => {
    i++;
    space();
    if (text[i] === "]") return void i++;
    for (;;) {
      value();
      space();
      if (text[i] === "]") return void i++;
      if (text[i] !== ",") stop(`expected "," or "]" after an array element, found ${show(text[i])}`);
      i++;
      space();
      if (text[i] === "]") stop('trailing comma before "]"');
    }
  };
  try {
    value();
    space();
    if (i < text.length) stop(`unexpected ${show(text[i])} after the JSON value`);
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) return null; // stack overflow on absurd nesting: no position
    const before = text.slice(0, e.offset);
    const line = before.split("\n").length;
    return { offset: e.offset, line, column: e.offset - before.lastIndexOf("\n"), reason: e.reason };
  }
}
