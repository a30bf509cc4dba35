/**
 * Bytes accepted by `Conn.write` that the socket has not taken yet.
 * Both adapters keep one; flushing joins everything queued into one write, so
 * many small frames written in one tick leave in one system call.
 */
export class ChunkQueue {
  // No array until something waits: most connections are idle most of the time.
  #chunks: Uint8Array[] | undefined;
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }

  get empty(): boolean {
    return this.#bytes === 0;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    (this.#chunks ??= []).push(chunk);
    this.#bytes += chunk.byteLength;
  }

  /** Removes and returns everything queued as one buffer. */
  takeAll(): Uint8Array {
    const chunks = this.#chunks ?? [];
    const total = this.#bytes;
    this.#chunks = undefined;
    this.#bytes = 0;
    if (chunks.length === 1) return chunks[0]!;
    const joined = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      joined.set(c, at);
      at += c.byteLength;
    }
    return joined;
  }

  /** Puts back the part of a taken buffer the socket did not accept. */
  unshift(rest: Uint8Array): void {
    if (rest.byteLength === 0) return;
    (this.#chunks ??= []).unshift(rest);
    this.#bytes += rest.byteLength;
  }

  clear(): void {
    this.#chunks = undefined;
    this.#bytes = 0;
  }
}
