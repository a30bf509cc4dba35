/**
 * Bester framing: `[4 bytes: length N, unsigned little-endian][N bytes: UTF-8 JSON]`.
 *
 * The decoder is push-based and knows nothing of sockets, so every runtime
 * adapter feeds it the same way and it can be tested at every split point.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { CUT_MIN_CHARS, type CutPaths, parseCut, TOO_DEEP } from "./json-cut.ts";
import { frameJson } from "./frame-json.ts";
import { nestsDeeperThan, shortestDeeperThan } from "./json-depth.ts";

export { frameJson };

/** The u32 length prefix in front of every frame (PROTOCOL.md §1). */
export const FRAME_HEADER_BYTES = 4;

type Utf8Slicer = { utf8Slice?: (start: number, end: number) => string };
// Buffer#utf8Slice (Node, Bun and Deno's node:buffer) skips toString's encoding dispatch.
const utf8Slice: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Utf8Slicer).utf8Slice === "function"
    ? (buf, start, end) => (buf as Utf8Slicer).utf8Slice!(start, end)
    : (buf, start, end) => buf.toString("utf8", start, end);

/** The largest length the 4-byte header can carry. */
const MAX_ENCODABLE_BYTES = 0xffff_ffff;

const encoder = new TextEncoder();
// Malformed UTF-8 must be an error, not silently become U+FFFD: see #deliver.
const lenient = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });

function writeHeader(out: Uint8Array, length: number): void {
  out[0] = length & 0xff;
  out[1] = (length >>> 8) & 0xff;
  out[2] = (length >>> 16) & 0xff;
  out[3] = (length >>> 24) & 0xff;
}

function readHeader(bytes: Uint8Array, at: number): number {
  // Multiplying the top byte keeps the result unsigned (<< 24 would go negative).
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x100_0000;
}

/** Frames already-serialised JSON text. The text is not checked. */
export function encodeJsonFrame(json: string): Uint8Array {
  // encode() then one copy: encodeInto() would need a subarray() view, whose
  // species lookup is slow on JavaScriptCore.
  const body = encoder.encode(json);
  if (body.length > MAX_ENCODABLE_BYTES) {
    throw new RangeError(`frame body of ${body.length} bytes does not fit a 4-byte length`);
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeHeader(out, body.length);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

/** Serialises `value` as JSON and frames it; throws like {@link frameJson}. */
export function encodeFrame(value: unknown): Uint8Array {
  return encodeJsonFrame(frameJson(value));
}

/**
 * Gets each decoded frame: the parsed value, its 1-based index on the stream,
 * and the decoder's `owner` option.
 */
export type FrameCallback = (value: unknown, index: number, owner: unknown) => void;

export type FrameErrorCode = "frame_too_large" | "invalid_utf8" | "invalid_json" | "too_deep";

export class FrameError extends Error {
  override name = "FrameError";
  readonly code: FrameErrorCode;
  /** 1-based index of the offending frame on this stream. */
  readonly frame: number;

  constructor(code: FrameErrorCode, frame: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.frame = frame;
  }
}

/**
 * Reassembles frames from chunks of any size.
 *
 * `onFrame` should not throw: if it does, the exception leaves `push` and the
 * rest of that chunk is lost, so the caller must treat the stream as broken.
 */
/** What a decoder is told once and keeps: its limit, its callbacks, and how it reads a body. */
interface DecoderRules {
  readonly maxFrameBytes: number;
  readonly onFrame: FrameCallback;
  readonly onBadBody: ((error: FrameError) => void) | undefined;
  readonly keepAsText: CutPaths | undefined;
  readonly asText: boolean;
  /** Infinity: depth not judged. */
  readonly maxDepth: number;
}

/**
 * Rules shared by every decoder told the same, found by their `onFrame`:
 * a session's decoder then holds one reference instead of six fields, since
 * idle connections are many. Kept only for decoders without an `onBadBody`
 * (which may be a closure per connection, and would pile up here).
 */
const SHARED_RULES = new WeakMap<FrameCallback, DecoderRules[]>();

function rulesFor(rules: DecoderRules): DecoderRules {
  if (rules.onBadBody !== undefined) return rules;
  let known = SHARED_RULES.get(rules.onFrame);
  if (known === undefined) SHARED_RULES.set(rules.onFrame, (known = []));
  const same = known.find(
    (r) => r.maxFrameBytes === rules.maxFrameBytes && r.keepAsText === rules.keepAsText && r.asText === rules.asText && r.maxDepth === rules.maxDepth,
  );
  if (same !== undefined) return same;
  known.push(rules);
  return rules;
}

export class FrameDecoder {
  readonly #rules: DecoderRules;
  readonly #owner: unknown;
  /** Frames whose header has been read so far; the current frame's 1-based index. */
  #index = 0;
  /** Header bytes of a header split across chunks; allocated on the first split, since idle connections are many. */
  #header: Uint8Array | undefined;
  #headerFill = 0;
  /** Body of a frame split across chunks, allocated once at its declared size. */
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #failed: FrameError | undefined;

  /**
   * `onBadBody`, when given, receives frames whose body is not valid UTF-8 or
   * JSON, and decoding goes on with the next frame (the length prefix still
   * delimits it), for streams where one bad request must not end the
   * connection (the informer). Without it such a frame fails the decoder.
   * `owner` is handed to `onFrame` as its third argument, so one shared
   * function can serve many decoders (a closure per decoder costs memory
   * for every idle connection). `keepAsText` names members (paths from the
   * top-level object, the first present wins) that a long frame's value
   * holds as a checked {@link RawJson} instead of building them
   * (json-cut.ts): for a reader that passes them on without looking inside.
   * `asText` delivers each frame as its checked UTF-8 text, not parsed: for
   * a reader that recognises the frames it expects by their first characters.
   * `maxDepth` bounds how deeply arrays and objects may nest in one frame; a
   * deeper frame is a `too_deep` bad body, found before it is parsed.
   */
  constructor(
    maxFrameBytes: number,
    onFrame: FrameCallback,
    options: { onBadBody?: (error: FrameError) => void; owner?: unknown; keepAsText?: CutPaths; asText?: boolean; maxDepth?: number } = {},
  ) {
    if (!(maxFrameBytes >= 0)) {
      throw new RangeError(`maxFrameBytes must be a non-negative number, got ${maxFrameBytes}`);
    }
    this.#rules = rulesFor({
      maxFrameBytes,
      onFrame,
      onBadBody: options.onBadBody,
      keepAsText: options.keepAsText,
      asText: options.asText === true,
      maxDepth: options.maxDepth ?? Infinity,
    });
    this.#owner = options.owner;
  }

  /** Bytes held for an incomplete frame (header or body). */
  get buffered(): number {
    return this.#body === undefined ? this.#headerFill : FRAME_HEADER_BYTES + this.#bodyFill;
  }

  get failed(): FrameError | undefined {
    return this.#failed;
  }

  /**
   * Feeds one chunk. Delivers every frame it completes, in order. Returns the
   * error of the first bad frame (frames before it are delivered first); from
   * then on the decoder is failed and returns that same error for every chunk.
   */
  push(chunk: Uint8Array): FrameError | undefined {
    if (this.#failed !== undefined) return this.#failed;
    let at = 0;
    while (at < chunk.length) {
      if (this.#body !== undefined) {
        // Continue a frame begun in an earlier chunk.
        const body = this.#body;
        const take = Math.min(body.length - this.#bodyFill, chunk.length - at);
        body.set(chunk.subarray(at, at + take), this.#bodyFill);
        this.#bodyFill += take;
        at += take;
        if (this.#bodyFill < body.length) return undefined;
        this.#body = undefined;
        this.#bodyFill = 0;
        this.#headerFill = 0;
        const err = this.#deliver(body, 0, body.length);
        if (err !== undefined) return err;
        continue;
      }

      let length: number;
      if (this.#headerFill === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
        length = readHeader(chunk, at);
        at += FRAME_HEADER_BYTES;
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - at);
        (this.#header ??= new Uint8Array(FRAME_HEADER_BYTES)).set(chunk.subarray(at, at + take), this.#headerFill);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < FRAME_HEADER_BYTES) return undefined;
        length = readHeader(this.#header!, 0);
      }
      this.#index++;

      // Checked before any body byte is read or stored: a hostile length costs nothing.
      if (length > this.#rules.maxFrameBytes) {
        return this.#fail(
          new FrameError(
            "frame_too_large",
            this.#index,
            `frame ${this.#index} declares ${length} bytes, above the limit of ${this.#rules.maxFrameBytes}`,
          ),
        );
      }

      if (chunk.length - at >= length) {
        // Whole body inside this chunk: decode in place, no copy.
        const start = at;
        at += length;
        this.#headerFill = 0;
        const err = this.#deliver(chunk, start, at);
        if (err !== undefined) return err;
      } else {
        // Copy, since the caller may reuse the chunk.
        const body = new Uint8Array(length);
        const rest = chunk.subarray(at);
        body.set(rest);
        at += rest.length;
        this.#body = body;
        this.#bodyFill = rest.length;
        this.#headerFill = FRAME_HEADER_BYTES;
      }
    }
    return undefined;
  }

  /** Decodes and parses the frame body `bytes[start, end)`. */
  #deliver(bytes: Uint8Array, start: number, end: number): FrameError | undefined {
    const index = this.#index;
    if (start === end) {
      return this.#bad(new FrameError("invalid_json", index, `frame ${index} is not valid JSON: empty frame`));
    }
    // Lenient decoding is much cheaper than the fatal decoder, and malformed
    // input always yields U+FFFD, so only text containing one is decoded
    // again strictly. A Buffer (what Bun's sockets hand over) decodes
    // a range without the subarray() view, which is slow on JavaScriptCore.
    let text: string;
    if (bytes instanceof Buffer) {
      text = utf8Slice(bytes, start, end);
      // TextDecoder drops one leading byte-order mark; so must this path.
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    } else {
      text = lenient.decode(bytes.subarray(start, end));
    }
    if (text.includes("\uFFFD")) {
      try {
        text = strict.decode(bytes.subarray(start, end));
      } catch (cause) {
        return this.#bad(new FrameError("invalid_utf8", index, `frame ${index} is not valid UTF-8`, { cause }));
      }
    }
    if (this.#rules.asText) {
      this.#rules.onFrame(text, index, this.#owner);
      return undefined;
    }
    // The cut reads the whole text anyway, and says how deep it is on the way.
    let value = this.#rules.keepAsText !== undefined && text.length >= CUT_MIN_CHARS ? parseCut(text, this.#rules.keepAsText, this.#rules.maxDepth) : undefined;
    if (value === TOO_DEEP) return this.#tooDeep(index);
    if (value === undefined) {
      // A text shorter than that cannot be too deep: most frames are never read for their depth.
      if (text.length >= shortestDeeperThan(this.#rules.maxDepth) && nestsDeeperThan(text, this.#rules.maxDepth)) return this.#tooDeep(index);
      try {
        value = JSON.parse(text);
      } catch (cause) {
        const reason = cause instanceof Error ? cause.message : String(cause);
        return this.#bad(new FrameError("invalid_json", index, `frame ${index} is not valid JSON: ${reason}`, { cause }));
      }
    }
    this.#rules.onFrame(value, index, this.#owner);
    return undefined;
  }

  #tooDeep(index: number): FrameError | undefined {
    return this.#bad(new FrameError("too_deep", index, `frame ${index} nests arrays and objects deeper than ${this.#rules.maxDepth} levels`));
  }

  /** A body that is not JSON: reported and skipped when the caller asked for that, else fatal. */
  #bad(error: FrameError): FrameError | undefined {
    if (this.#rules.onBadBody === undefined) return this.#fail(error);
    this.#rules.onBadBody(error);
    return undefined;
  }

  #fail(error: FrameError): FrameError {
    this.#failed = error;
    // Nothing will be decoded any more: let the partial frame go.
    this.#body = undefined;
    this.#bodyFill = 0;
    this.#headerFill = 0;
    return error;
  }
}
