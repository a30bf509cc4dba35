/**
 * The load generator: N sender/receiver pairs, each sender keeping at most
 * `window` messages in flight (sent, neither delivered to its partner nor
 * refused), for a warm-up and then a measured interval, then a bounded drain.
 *
 * It knows nothing of the wire: a {@link LoadTransport} opens each pair and
 * reports back what arrives, so the same loop drives Bester and, for a
 * comparison, another message server (bench/compare/).
 *
 * Every pair runs in this one process, on purpose: the window is end to end
 * (a sender learns at once that its partner received), and latency is one
 * clock's difference (`performance.now()` when sent, when received), with
 * nothing to synchronise between processes.
 * @module
 */
import { Histogram, type LatencySummary } from "./histogram.ts";
import { round } from "./proc.ts";

/** What a transport reports while a run goes on. */
export interface LoadSink {
  /** Message `seq` of `pair` reached the receiver; `sentAt` is the stamp it was sent with. */
  delivered(pair: number, seq: number, sentAt: number): void;
  /** The server refused message `seq` (a "bad" status report): it will not arrive. */
  refused(pair: number, seq: number, why: string): void;
  /** The server accepted a message (a "good" status report); counted, not needed for the window. */
  accepted(pair: number): void;
  /** Something arrived that belongs to no message of this run. */
  unexpected(pair: number, what: string): void;
  /** A connection of the pair ended; what is in flight on it is lost. */
  broken(pair: number, why: string): void;
}

/** One pair's sending side, as the transport opened it. */
export interface PairLink {
  /** Queues message `seq`, stamped `sentAt` (performance.now()). */
  send(seq: number, sentAt: number): void;
  close(): void;
}

export interface LoadTransport {
  /** Opens pair `index` (logged in, subscribed: ready to send and receive). */
  openPair(index: number, sink: LoadSink): Promise<PairLink>;
}

export type Phase = "warmup" | "measure" | "drain" | "done";

export interface LoadOptions {
  pairs: number;
  window: number;
  warmupMs: number;
  durationMs: number;
  /** After sending stops, how long to wait for what is still in flight. */
  drainMs: number;
  /** Each sender stops after this many messages, even before the time is up. */
  maxMessagesPerPair: number;
  /** The server reports on every message (Bester's status reports): the drain also waits for those. */
  expectReports?: boolean;
  /** Called when the measured interval starts and ends (to sample CPU), and when the drain ends. */
  onPhase?(phase: Phase): void;
  /** Called about once a second. */
  onProgress?(progress: Progress): void;
}

export interface Progress {
  phase: Phase;
  elapsedSeconds: number;
  /** Deliveries per second since the previous progress call. */
  rate: number;
  inFlight: number;
  sent: number;
  received: number;
  /** Largest latency since the previous progress call, ms. */
  maxLatencyMs: number;
}

export interface LoadResult {
  pairs: number;
  window: number;
  sent: number;
  /** Distinct messages that reached their receiver. */
  received: number;
  /** sent - received: refused, broken, or still missing after the drain. */
  lost: number;
  /** Of the lost: refused by the server with a "bad" status report. */
  refused: number;
  duplicated: number;
  /** Frames that belong to no message of this run (another run's, or unknown kinds). */
  unexpected: number;
  /** "good" status reports (Bester only; 0 where the server sends none). */
  accepted: number;
  /** Length of the measured interval as it happened. */
  measuredSeconds: number;
  /** Deliveries during the measured interval. */
  measuredMessages: number;
  messagesPerSecond: number;
  latencyMs: LatencySummary;
  /** The first few problems, for the report. */
  problems: string[];
}

const MAX_PROBLEMS = 5;

/** Counts summed over every pair. */
function totals(states: readonly PairState[]) {
  const t = { inFlight: 0, sent: 0, received: 0, refused: 0, duplicated: 0 };
  for (const s of states) {
    t.inFlight += s.inFlight;
    t.sent += s.nextSeq;
    t.received += s.received;
    t.refused += s.refused;
    t.duplicated += s.duplicated;
  }
  return t;
}

class PairState {
  nextSeq = 0;
  received = 0;
  refused = 0;
  duplicated = 0;
  broken = false;
  link: PairLink | undefined;
  /** One byte per sequence number: 1 delivered, 2 refused. */
  seen = new Uint8Array(1024);

  get inFlight(): number {
    return this.broken ? 0 : this.nextSeq - this.received - this.refused;
  }

  mark(seq: number, value: number): number {
    if (seq >= this.seen.length) {
      let size = this.seen.length * 2;
      while (size <= seq) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.seen);
      this.seen = grown;
    }
    const before = this.seen[seq]!;
    if (before === 0) this.seen[seq] = value;
    return before;
  }
}

/** Runs one load: opens the pairs, sends, measures, drains, closes. */
export async function runLoad(transport: LoadTransport, options: LoadOptions): Promise<LoadResult> {
  const { window, maxMessagesPerPair } = options;
  const states = Array.from({ length: options.pairs }, () => new PairState());
  const histogram = new Histogram();
  const problems: string[] = [];
  let phase: Phase = "warmup";
  let sending = false;
  let measureStart = 0;
  let measureEnd = 0;
  let measured = 0;
  let unexpected = 0;
  let accepted = 0;
  let sinceProgress = 0;
  let maxSinceProgress = 0;
  let settle: (() => void) | undefined;
  let endMeasure: () => void = () => {};
  let durationTimer: ReturnType<typeof setTimeout> | undefined;

  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };

  const pump = (state: PairState) => {
    const link = state.link;
    if (!sending || state.broken || link === undefined) return;
    while (state.inFlight < window && state.nextSeq < maxMessagesPerPair) {
      link.send(state.nextSeq++, performance.now());
    }
  };

  const allIdle = () => states.every((s) => s.inFlight === 0 && (s.broken || s.nextSeq >= maxMessagesPerPair || !sending));

  const reportsPending = () => {
    if (!options.expectReports) return false;
    let sent = 0;
    let refused = 0;
    for (const s of states) if (!s.broken) (sent += s.nextSeq), (refused += s.refused);
    return accepted + refused < sent;
  };

  const checkSettled = () => {
    if (settle === undefined) return;
    if ((states.every((s) => s.inFlight === 0) && !reportsPending()) || states.every((s) => s.broken)) settle();
  };

  const sink: LoadSink = {
    delivered(pair, seq, sentAt) {
      const state = states[pair];
      if (state === undefined || !(seq >= 0 && seq < state.nextSeq)) {
        unexpected++;
        return;
      }
      const before = state.mark(seq, 1);
      if (before !== 0) {
        state.duplicated++;
        if (before === 2) problem(`pair ${pair}: message ${seq} was refused and then delivered`);
        return;
      }
      state.received++;
      const now = performance.now();
      const latency = now - sentAt;
      if (phase === "measure") {
        measured++;
        histogram.recordMs(latency);
      }
      sinceProgress++;
      if (latency > maxSinceProgress) maxSinceProgress = latency;
      pump(state);
      if (settle !== undefined) checkSettled();
      else if (phase === "measure" && state.nextSeq >= maxMessagesPerPair && allIdle()) endMeasure();
    },
    refused(pair, seq, why) {
      const state = states[pair];
      if (state === undefined || !(seq >= 0 && seq < state.nextSeq)) {
        unexpected++;
        return;
      }
      if (state.mark(seq, 2) !== 0) return;
      state.refused++;
      problem(`pair ${pair}: message ${seq} refused: ${why}`);
      pump(state);
      checkSettled();
    },
    accepted() {
      accepted++;
      if (settle !== undefined) checkSettled();
    },
    unexpected(pair, what) {
      unexpected++;
      problem(`pair ${pair}: unexpected ${what}`);
    },
    broken(pair, why) {
      const state = states[pair];
      if (state === undefined || state.broken) return;
      state.broken = true;
      problem(`pair ${pair}: ${why}`);
      checkSettled();
      if (states.every((s) => s.broken)) endMeasure();
    },
  };

  try {
    for (let i = 0; i < states.length; i++) states[i]!.link = await transport.openPair(i, sink);
  } catch (err) {
    for (const s of states) s.link?.close();
    throw err;
  }

  const started = performance.now();
  const measuredOver = new Promise<void>((resolve) => {
    endMeasure = () => {
      if (phase !== "measure" && phase !== "warmup") return;
      if (phase === "warmup") measureStart = performance.now();
      measureEnd = performance.now();
      phase = "drain";
      sending = false;
      options.onPhase?.("drain");
      resolve();
    };
  });

  const progressTimer = setInterval(() => {
    const { inFlight, sent, received } = totals(states);
    options.onProgress?.({
      phase,
      elapsedSeconds: round((performance.now() - started) / 1000, 1),
      rate: sinceProgress,
      inFlight,
      sent,
      received,
      maxLatencyMs: round(maxSinceProgress, 2),
    });
    sinceProgress = 0;
    maxSinceProgress = 0;
  }, 1000);

  const startMeasure = () => {
    if (phase !== "warmup") return;
    phase = "measure";
    measureStart = performance.now();
    options.onPhase?.("measure");
    durationTimer = setTimeout(endMeasure, options.durationMs);
    // Every sender may already be done (a small --messages): nothing left to measure.
    if (allIdle()) endMeasure();
  };
  let warmupTimer: ReturnType<typeof setTimeout> | undefined;
  sending = true;
  // Without a warm-up, measuring starts before the first message, not a timer tick later.
  if (options.warmupMs <= 0) startMeasure();
  else warmupTimer = setTimeout(startMeasure, options.warmupMs);
  for (const s of states) pump(s);

  await measuredOver;
  clearTimeout(warmupTimer);
  clearTimeout(durationTimer);

  // Drain: whatever is in flight gets drainMs to arrive.
  await new Promise<void>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    settle = () => {
      settle = undefined;
      clearTimeout(timer);
      resolve();
    };
    timer = setTimeout(() => settle?.(), options.drainMs);
    checkSettled();
  });
  phase = "done";
  options.onPhase?.("done");
  clearInterval(progressTimer);
  for (const s of states) s.link?.close();

  const { sent, received, refused, duplicated } = totals(states);
  const measuredSeconds = Math.max((measureEnd - measureStart) / 1000, 0);
  if (sent - received > 0 && problems.length === 0) problem(`${sent - received} messages did not arrive within the drain time`);
  return {
    pairs: options.pairs,
    window,
    sent,
    received,
    lost: sent - received,
    refused,
    duplicated,
    unexpected,
    accepted,
    measuredSeconds: round(measuredSeconds, 3),
    measuredMessages: measured,
    messagesPerSecond: measuredSeconds > 0 ? Math.round(measured / measuredSeconds) : 0,
    latencyMs: roundSummary(histogram.summary()),
    problems,
  };
}

function roundSummary(s: LatencySummary): LatencySummary {
  const r = (n: number | null) => (n === null ? null : round(n, 3));
  return { p50: r(s.p50), p90: r(s.p90), p99: r(s.p99), max: r(s.max), mean: r(s.mean), count: s.count };
}
