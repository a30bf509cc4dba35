/**
 * `bester bench --replay N`: how long a user who was away waits for what
 * was kept for it (PROTOCOL.md §9). Receiver `bench-g0` logs in once (so the
 * gateway knows it) and leaves; sender `bench-t0` sends it N messages
 * through the relay handler, each reported good with `queued`; then the
 * receiver logs in again, and the time from dialling to the last replayed
 * message is measured. With --ack the receiver asks for acknowledged
 * delivery and acknowledges the last seq once all have arrived, so the next
 * repeat starts from an empty inbox.
 * @module
 */
import { ClosedReason } from "../connection/close-reason.ts";
import { type BesterTransportOptions, dataTemplate, openSession, receiverName, senderName } from "./bester-transport.ts";

export interface ReplayOptions extends Omit<BesterTransportOptions, "scenario" | "window"> {
  /** Messages queued, then replayed. */
  count: number;
  /** Times the whole is done. */
  repeats: number;
  /** Messages in flight while queueing (sent, not yet reported). */
  window: number;
  /** How long one replay may take before the run fails. */
  timeoutMs: number;
}

/** One repeat: queueing N messages, then the login that replays them. */
export interface ReplayRound {
  /** From the first message sent to the last good report. */
  queueMs: number;
  /** From dialling to the first and to the last replayed message. */
  firstMs: number;
  lastMs: number;
  /** Replayed messages per second, from dialling to the last. */
  messagesPerSecond: number;
}

export interface ReplayResult {
  messages: number;
  size: number;
  acknowledged: boolean;
  rounds: ReplayRound[];
  /** The median round by lastMs. */
  median: ReplayRound;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Logs the receiver in and out once: with the open account store, a user is known (has an inbox) once it has logged in. */
async function visit(opts: ReplayOptions, onFrame: (frame: string) => void): Promise<void> {
  let closed!: () => void;
  const gone = new Promise<void>((resolve) => (closed = resolve));
  const session = await openSession(opts, receiverName(0), onFrame, () => closed(), opts.ack === true);
  session.close(ClosedReason.clientRequested);
  await gone;
}

/** Sends `count` messages to the receiver, who is away; resolves once every one is reported good and queued for it. */
async function queue(opts: ReplayOptions, runId: string): Promise<number> {
  const to = receiverName(0);
  const [head, mid, tail] = dataTemplate(to, runId, opts.size);
  const prefix = `{"header":{"scope":"client"},"payload":{"type":${JSON.stringify(opts.type)},"id":"`;
  let sent = 0;
  let reported = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let closing = false;
  const sender = await openSession(
    opts,
    senderName(0),
    (frame) => {
      let value: { header?: { status?: string; messageType?: string; queued?: unknown; error?: { code?: string; message?: string } } };
      try {
        value = JSON.parse(frame);
      } catch {
        value = {};
      }
      const h = value.header;
      if (h?.messageType !== "statusReport") failure ??= new Error(`the sender got a frame it did not expect: ${frame.slice(0, 120)}`);
      else if (h.status !== "good") failure ??= new Error(`a message was refused: ${h.error?.code}: ${h.error?.message}`);
      else if (!Array.isArray(h.queued) || !h.queued.includes(to)) {
        failure ??= new Error(`a message was not queued for ${to} (is it still connected, or unknown to the gateway?): ${frame.slice(0, 160)}`);
      }
      reported++;
      wake?.();
    },
    (why) => {
      if (closing) return;
      failure ??= new Error(why);
      wake?.();
    },
  );
  const started = performance.now();
  try {
    while (reported < opts.count && failure === undefined) {
      while (sent < opts.count && sent - reported < opts.window) {
        sent++;
        sender.sendJson(`${prefix}${sent}","data":${head}${sent}${mid}${Date.now()}${tail}}}`);
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    closing = true;
    sender.close(ClosedReason.clientRequested);
  }
  if (failure !== undefined) throw failure;
  return performance.now() - started;
}

export async function runReplay(opts: ReplayOptions, onRound?: (i: number, r: ReplayRound) => void): Promise<ReplayResult> {
  const rounds: ReplayRound[] = [];
  for (let i = 0; i < opts.repeats; i++) {
    const runId = `${opts.runId}-${i}`;
    await visit(opts, () => {});
    const queueMs = await queue(opts, runId);

    let first = 0;
    let last = 0;
    let got = 0;
    let highestSeq = 0;
    let failure: Error | undefined;
    let closing = false;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    const dialled = performance.now();
    const receiver = await openSession(
      opts,
      receiverName(0),
      (frame) => {
        let value: { header?: { messageType?: string; seq?: unknown }; payload?: { data?: { r?: unknown } } };
        try {
          value = JSON.parse(frame);
        } catch {
          value = {};
        }
        if (value.header?.messageType === "receivedMessage" && value.payload?.data?.r === runId) {
          const now = performance.now();
          if (got === 0) first = now;
          last = now;
          got++;
          if (typeof value.header.seq === "number") highestSeq = Math.max(highestSeq, value.header.seq);
          if (got === opts.count) done();
        } else if (value.header?.messageType !== "statusReport") {
          failure ??= new Error(`the receiver got a frame it did not expect: ${frame.slice(0, 120)}`);
          done();
        }
      },
      (why) => {
        if (closing) return;
        failure ??= new Error(why);
        done();
      },
      opts.ack === true,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.timeoutMs)));
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    if (failure === undefined && got < opts.count) failure = new Error(`${got} of ${opts.count} messages replayed within ${opts.timeoutMs} ms`);
    if (failure === undefined && opts.ack && highestSeq > 0) {
      receiver.sendJson(`{"payload":{"type":"builtin","id":"ack-replay","data":{"command":{"type":"ack","args":{"seq":${highestSeq}}}}}}`);
    }
    closing = true;
    receiver.close(ClosedReason.clientRequested);
    if (failure !== undefined) throw failure;
    const r: ReplayRound = {
      queueMs: round2(queueMs),
      firstMs: round2(first - dialled),
      lastMs: round2(last - dialled),
      messagesPerSecond: Math.round(opts.count / ((last - dialled) / 1000)),
    };
    rounds.push(r);
    onRound?.(i, r);
  }
  const sorted = [...rounds].sort((a, b) => a.lastMs - b.lastMs);
  return { messages: opts.count, size: opts.size, acknowledged: opts.ack === true, rounds, median: sorted[Math.floor((sorted.length - 1) / 2)]! };
}
