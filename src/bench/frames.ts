/**
 * The load generator's side of Bester framing: splits a byte stream into
 * frame bodies without parsing them, so the caller can recognise the frames
 * it sees most (a good status report) by their first bytes and parse only the
 * rest. The gateway's own decoder (protocol/frame.ts) validates everything; a
 * benchmark client only has to keep up.
 * @module
 */

/** Bodies above this end the stream: a bench peer never sends them, so it is a bug or the wrong server. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export class FrameSplitter {
  #pending: Uint8Array | undefined;
  readonly #onBody: (body: Uint8Array) => void;

  constructor(onBody: (body: Uint8Array) => void) {
    this.#onBody = onBody;
  }

  /** Feeds a chunk; calls onBody for every complete frame. Returns an error text when the stream is not framed. */
  push(chunk: Uint8Array): string | undefined {
    let buf = chunk;
    if (this.#pending !== undefined) {
      const joined = new Uint8Array(this.#pending.length + chunk.length);
      joined.set(this.#pending);
      joined.set(chunk, this.#pending.length);
      buf = joined;
      this.#pending = undefined;
    }
    let at = 0;
    while (buf.length - at >= 4) {
      const length = (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16)) + buf[at + 3]! * 0x100_0000;
      if (length > MAX_BODY_BYTES) return `a frame of ${length} bytes: not a Bester stream?`;
      if (buf.length - at - 4 < length) break;
      this.#onBody(buf.subarray(at + 4, at + 4 + length));
      at += 4 + length;
    }
    // Copied: the runtime may reuse the chunk after the data callback returns.
    if (at < buf.length) this.#pending = buf.slice(at);
    return undefined;
  }
}
