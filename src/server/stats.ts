/**
 * Counters the gateway keeps about itself, for logs now and for the control
 * API's metrics. Plain numbers in maps: cheap enough for the hot path.
 * @module
 */
import type { ClosedReason } from "./close-reason.ts";

/** Upper bounds (ms) of the handler latency histogram buckets. */
export const LATENCY_BUCKETS_MS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] as const;

export interface Histogram {
  buckets: number[];
  count: number;
  sumMs: number;
}

function bump<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

export class Stats {
  readonly startedAt = Date.now();
  readonly messagesIn = new Map<string, number>();
  readonly messagesDelivered = new Map<string, number>();
  readonly reports = new Map<"good" | "bad", number>();
  readonly closed = new Map<ClosedReason, number>();
  readonly handlerFailures = new Map<string, number>();
  readonly handlerLatencyMs = new Map<string, Histogram>();
  authFailures = 0;
  connectionsOpened = 0;

  messageIn(type: string): void {
    bump(this.messagesIn, type);
  }

  delivered(type: string): void {
    bump(this.messagesDelivered, type);
  }

  report(status: "good" | "bad"): void {
    bump(this.reports, status);
  }

  connectionClosed(reason: ClosedReason): void {
    bump(this.closed, reason);
  }

  handlerFailure(type: string): void {
    bump(this.handlerFailures, type);
  }

  handlerLatency(type: string, ms: number): void {
    let h = this.handlerLatencyMs.get(type);
    if (!h) this.handlerLatencyMs.set(type, (h = { buckets: LATENCY_BUCKETS_MS.map(() => 0), count: 0, sumMs: 0 }));
    h.count++;
    h.sumMs += ms;
    for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
      if (ms <= LATENCY_BUCKETS_MS[i]!) {
        h.buckets[i]!++;
        break;
      }
    }
  }
}
