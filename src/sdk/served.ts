/**
 * One gateway connection to a handler, as the SDK serves it: requests in,
 * answers out in the order the requests came, even when a later one is
 * ready first. The transport underneath (node:net, or the gateway's own
 * framed connections on its runtime) decodes the frames and writes the
 * answers; this decides when.
 * @module
 */

/** One connection as the serving logic sees it. */
export interface Wire {
  /** Queues one answer frame. */
  send(json: string): void;
  /** Answers were queued outside a read; `idle`: none is being worked on. */
  answered(idle: boolean): void;
  pause(): void;
  resume(): void;
  /** Closes once every queued answer is written. */
  finish(): void;
  destroy(): void;
}

/** What every connection of one handler shares. */
export interface Service {
  answerFor(value: unknown, done: (json: string) => void): void;
  maxFrameBytes: number;
  log: (line: string) => void;
  /** Set once close() began: connections take no more requests. */
  closing: boolean;
  served: Set<Served>;
}

/** A transport: listens on `socketPath`, serving each connection as a {@link Served}; resolves to its close. */
export type HandlerTransport = (socketPath: string, service: Service) => Promise<() => Promise<void>>;

/**
 * Requests of one connection being worked on at once; past it the connection
 * is not read until answers go out, so a flood cannot exhaust memory.
 */
const MAX_IN_FLIGHT = 1024;

/**
 * The handler's socket: only its own user (the gateway's, which starts it)
 * may connect, whatever the umask. Anyone else who could would send requests
 * with a forged envelope (`meta.from`).
 */
export const HANDLER_SOCKET_MODE = 0o600;

export class Served {
  #inFlight = 0;
  /** Reading stopped because MAX_IN_FLIGHT requests are being worked on. */
  #paused = false;
  /** No more requests will be read: close once the last answer is out. */
  #finishing = false;
  /** One slot per request in arrival order; answers leave in that order even when later ones are ready first. */
  #slots: (string | undefined)[] = [];
  #head = 0;
  #closed: (() => void) | undefined;

  constructor(
    readonly wire: Wire,
    readonly service: Service,
  ) {
    service.served.add(this);
    if (service.closing) this.end();
  }

  /** One request frame, decoded. */
  request(value: unknown): void {
    this.#inFlight++;
    // Indices stay valid: the array is only replaced once every slot is released.
    const at = this.#slots.push(undefined) - 1;
    this.service.answerFor(value, (json) => {
      this.#slots[at] = json;
      this.#release();
    });
    if (this.#inFlight >= MAX_IN_FLIGHT && !this.#paused) {
      this.#paused = true;
      this.wire.pause();
    }
  }

  /** A frame that cannot be decoded: the connection is closed, others are unaffected. */
  unreadable(message: string): void {
    this.service.log(`closing a gateway connection: ${message}`);
    this.wire.destroy();
  }

  #release(): void {
    const slots = this.#slots;
    while (this.#head < slots.length && slots[this.#head] !== undefined) {
      this.wire.send(slots[this.#head]!);
      slots[this.#head++] = undefined;
      this.#inFlight--;
    }
    if (this.#head === slots.length) {
      this.#slots = [];
      this.#head = 0;
    }
    if (this.#paused && this.#inFlight < MAX_IN_FLIGHT) {
      this.#paused = false;
      this.wire.resume();
    }
    this.wire.answered(this.#inFlight === 0);
    if (this.#inFlight === 0 && this.#finishing) this.wire.finish();
  }

  /** The gateway sent its last request (or the handler is closing): finish after the answers. */
  end(): void {
    this.#finishing = true;
    if (this.#inFlight === 0) this.wire.finish();
  }

  closed(): void {
    this.service.served.delete(this);
    this.#closed?.();
  }

  /** Resolves once the connection is closed. */
  whenClosed(): Promise<void> {
    if (!this.service.served.has(this)) return Promise.resolve();
    return new Promise((resolve) => (this.#closed = resolve));
  }
}
