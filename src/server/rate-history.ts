/**
 * Message and error rates over the last minutes, for the status page: the
 * gateway's cumulative counters, sampled on a timer into a bounded ring, and
 * per-second rates computed between neighbouring samples when they are read.
 * The hot path is not involved: it bumps its counters as before, and the
 * sampler only reads them.
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import { ClosedReason } from "../connection/close-reason.ts";
import type { Stats } from "./stats.ts";

/** The counters a sample holds; each only grows while the gateway runs. */
export const RATE_COUNTERS = [
  "messagesIn",
  "delivered",
  "badReports",
  "handlerFailures",
  "authFailures",
  "connectionsOpened",
  "connectionErrors",
] as const;
export type RateCounter = (typeof RATE_COUNTERS)[number];
export type Counters = Record<RateCounter, number>;

/** Per-second rates over one interval, which ended at `at`. */
export type RatePoint = { at: string; seconds: number } & Counters;

export class RateHistory {
  readonly #times: number[] = [];
  readonly #samples: Counters[] = [];
  /** Where the next sample goes once the ring is full. */
  #next = 0;

  /** `capacity` samples are kept, so `capacity - 1` rate points. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`capacity: expected an integer >= 2, got ${capacity}`);
  }

  /** Records the counters as they were at `at` (ms since the epoch); samples arrive in time order. */
  record(at: number, counters: Counters): void {
    const copy = { ...counters };
    if (this.#times.length < this.capacity) {
      this.#times.push(at);
      this.#samples.push(copy);
      return;
    }
    this.#times[this.#next] = at;
    this.#samples[this.#next] = copy;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** The rates between neighbouring samples, oldest first. */
  points(): RatePoint[] {
    const n = this.#times.length;
    const out: RatePoint[] = [];
    for (let k = 1; k < n; k++) {
      const i = (this.#next + k - 1) % n;
      const j = (this.#next + k) % n;
      const seconds = (this.#times[j]! - this.#times[i]!) / 1000;
      if (seconds <= 0) continue;
      const point = { at: new Date(this.#times[j]!).toISOString(), seconds } as RatePoint;
      for (const name of RATE_COUNTERS) {
        // A counter never goes down; were one reset, its interval reads 0, not a negative rate.
        const moved = Math.max(0, this.#samples[j]![name] - this.#samples[i]![name]);
        point[name] = Math.round((moved / seconds) * 1000) / 1000;
      }
      out.push(point);
    }
    return out;
  }
}

/**
 * Samples `read()` into `history` now and every `intervalMs`, until the
 * returned function is called or `stopped()` turns true. The timer never
 * keeps the process alive on its own.
 */
export function sampleRates(history: RateHistory, read: () => Counters, intervalMs: number, stopped: () => boolean): () => void {
  history.record(Date.now(), read());
  const timer = setInterval(() => {
    if (stopped()) return clearInterval(timer);
    history.record(Date.now(), read());
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Closes that mean something went wrong with the connection (not a goodbye, an operator or a shutdown). */
const ERROR_CLOSES: ReadonlySet<string> = new Set([
  ClosedReason.frameError,
  ClosedReason.malformed,
  ClosedReason.badScope,
  ClosedReason.authFailed,
  ClosedReason.authTimeout,
  ClosedReason.slowConsumer,
  ClosedReason.socketError,
]);

function sum(values: Iterable<number>): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}

/** The cumulative counters of `s` the rates are made of. */
export function rateCounters(s: Stats): Counters {
  let connectionErrors = 0;
  for (const [reason, n] of s.closed) if (ERROR_CLOSES.has(reason)) connectionErrors += n;
  return {
    messagesIn: sum(s.messagesIn.values()),
    delivered: sum(s.messagesDelivered.values()),
    badReports: s.badReports,
    handlerFailures: sum(s.handlerFailures.values()),
    authFailures: s.authFailures,
    connectionsOpened: s.connectionsOpened,
    connectionErrors,
  };
}
