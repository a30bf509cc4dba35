/**
 * When queued bytes are offered to the transport: once per event-loop turn,
 * for every connection at once, so that all the frames one batch of reads
 * produces leave in one write per socket; or early, for a connection that
 * has queued many frames in this turn, so its reader can start on them
 * while the rest of the turn's output is made.
 *
 * The same rule for every runtime and every kind of connection.
 * @module
 */

/** What the turn's flush calls. */
export interface Flushable {
  flush(): void;
}

/**
 * Frames a connection queues in one turn before it is flushed at once. A
 * relay's processes then overlap instead of taking turns: the handler starts
 * on a batch while the gateway still reads the next. A count, not bytes: a
 * byte threshold would flush large frames one or two at a time, and each
 * early flush is one more write.
 */
export const EARLY_FLUSH_FRAMES = 32;

/**
 * Frames written per turn (a running average) above which this process
 * counts as busy: its peers are busy too, so an early flush would start none
 * of them sooner and only costs a write and a wake-up. A busy process
 * flushes early every 2 × EARLY_FLUSH_FRAMES instead. Set above what a relay
 * for one sender writes in a turn, so a lone round trip keeps the early
 * flush that lets its processes overlap; many senders pass it.
 */
export const BUSY_TURN_FRAMES = 192;

let pending: Flushable[] = [];
/** The other list, reused: a turn allocates no list. */
let spare: Flushable[] = [];
let scheduled = false;
let turnFrames = 0;
let averageTurnFrames = 0;
let earlyFlushFrames = EARLY_FLUSH_FRAMES;

function flushTurn(): void {
  scheduled = false;
  averageTurnFrames += (turnFrames - averageTurnFrames) / 8;
  turnFrames = 0;
  earlyFlushFrames = averageTurnFrames > BUSY_TURN_FRAMES ? 2 * EARLY_FLUSH_FRAMES : EARLY_FLUSH_FRAMES;
  const batch = pending;
  pending = spare;
  for (let i = 0; i < batch.length; i++) batch[i]!.flush();
  batch.length = 0;
  spare = batch;
}

/**
 * Notes one frame queued by a connection that has queued `framesThisTurn`
 * in this turn (this one included); true when it should flush now.
 */
export function frameQueued(framesThisTurn: number): boolean {
  turnFrames++;
  return framesThisTurn >= earlyFlushFrames;
}

/**
 * Flushes `c` at the end of this turn. A connection flushed early and
 * queued again may be listed twice: its second flush finds nothing to do.
 */
export function flushAtTurnEnd(c: Flushable): void {
  pending.push(c);
  if (!scheduled) {
    scheduled = true;
    // setImmediate, not a microtask: a relayed message reaches its writes
    // several promise steps after its read, and all of them belong to one write.
    setImmediate(flushTurn);
  }
}
