/**
 * The order of one session's messages: up to `limits.sessionWindow` in
 * flight at once, finished strictly in the order they arrived. A message's
 * command (a handler's answer) is carried out only when it reaches the head,
 * so what one client sends is delivered in the order it was sent; then its
 * report is written. Frames past the window wait here, and the socket is
 * paused while they do, which pushes back on the sender.
 * @module
 */
import type { ClientPayload } from "../protocol/messages.ts";
import { statusReport, type ErrorInfo } from "../protocol/reports.ts";
import { type Command, internalFailure, type Outcome, PIPELINED, type Pipelined, type Settle } from "./outcome.ts";
import { type ReplyTarget, writeReply } from "./reply.ts";

/** What the order needs of the session it orders. */
export interface OrderedSession extends ReplyTarget {
  readonly host: ReplyTarget["host"] & { readonly limits: { sessionWindow: number } };
  /** Frames can be worked on (the login is not being checked). */
  readonly ready: boolean;
  /** Works on one frame now. */
  handle(value: unknown): void;
  /** Every message in flight is answered. */
  orderIdle(): void;
  pause(): void;
  resume(): void;
}

/** What the order needs from the gateway: where messages go, and how a command is carried out. */
export interface MessageFlow<S> {
  /** Settles `slot` with what answers `payload`, at once or later. */
  route(session: S, payload: ClientPayload, slot: Slot): void;
  /**
   * Carries out a handler's command for the message of `slot`: its outcome;
   * or undefined when `slot` will be settled later (with a report, or with
   * the next handler's command along a sendHandler chain) and the messages
   * after it must wait; or PIPELINED when it will be settled later but the
   * messages after it may go ahead (see outcome.ts).
   */
  execute(session: S, slot: Slot, command: Command): Outcome | Pipelined | undefined;
}

/** One message in flight: its place in the order and, once known, its outcome. */
export class Slot implements Settle {
  outcome: Outcome | undefined = undefined;
  /** Its command is under way, in order: the messages after it need not wait for its outcome. */
  pipelined = false;

  constructor(
    readonly order: { settled(): void },
    readonly id: string,
  ) {}

  settle(outcome: Outcome): void {
    this.outcome = outcome;
    this.order.settled();
  }
}

/** Never pushed to: replaced by a fresh array on first use. */
const NONE: unknown[] = [];

export class MessageOrder<S extends OrderedSession> {
  #slots: Slot[] = NONE as Slot[];
  /** Frames read while the window was full (or the login not yet answered), oldest at #backlogHead. */
  #backlog: unknown[] = NONE;
  #backlogHead = 0;
  #paused = false;
  /** Set while commands run and replies are written, so a settle from inside does not re-enter... */
  #running = false;
  /** ...but is looked at once the current pass is done. */
  #again = false;

  constructor(
    readonly session: S,
    readonly flow: MessageFlow<S>,
  ) {}

  /** Messages accepted and not yet answered. */
  get inFlight(): number {
    return this.#slots.length;
  }

  get idle(): boolean {
    return this.#slots.length === 0 && this.#backlogHead === this.#backlog.length;
  }

  /** A frame to work on: at once when nothing waits and the window has room, else after those before it. */
  take(value: unknown): void {
    if (this.#backlog === NONE && this.session.ready && this.#slots.length < this.session.host.limits.sessionWindow) {
      this.session.handle(value);
      if (this.#paused && this.#backlog === NONE) this.pump();
      return;
    }
    if (this.#backlog === NONE) this.#backlog = [];
    this.#backlog.push(value);
    this.pump();
  }

  /** A well-formed message enters the window and is routed. */
  dispatch(payload: ClientPayload): void {
    const slot = new Slot(this, payload.id);
    if (this.#slots === NONE) this.#slots = [];
    this.#slots.push(slot);
    try {
      this.flow.route(this.session, payload, slot);
    } catch (err) {
      if (slot.outcome === undefined) slot.settle(internalFailure(err));
    }
  }

  /** Handles waiting frames while the window allows; holds the socket while it does not. */
  pump(): void {
    const session = this.session;
    const window = session.host.limits.sessionWindow;
    while (this.#backlogHead < this.#backlog.length && !session.closing && session.ready && this.#slots.length < window) {
      const value = this.#backlog[this.#backlogHead];
      this.#backlog[this.#backlogHead++] = undefined;
      session.handle(value);
    }
    if (this.#backlogHead === this.#backlog.length) {
      this.#backlog = NONE;
      this.#backlogHead = 0;
    }
    const waiting = this.#backlog.length > 0;
    if (waiting && !this.#paused) {
      this.#paused = true;
      session.pause();
    } else if (!waiting && this.#paused) {
      this.#paused = false;
      session.resume();
    }
  }

  /**
   * Carries out commands and writes replies, in arrival order: a message's
   * command runs once every message before it has run its own (or is
   * running one in order: PIPELINED), and a reply is written once it is at
   * the head. Commands run even after the client left, so its message still
   * reaches the recipients it was sent to.
   */
  settled(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    const session = this.session;
    try {
      do {
        this.#again = false;
        this.#advance(session);
      } while (this.#again);
    } finally {
      this.#running = false;
    }
    if (session.closing) return;
    if (this.#slots.length === 0) session.orderIdle();
    this.pump();
  }

  #advance(session: S): void {
    let i = 0;
    while (i < this.#slots.length) {
      const slot = this.#slots[i]!;
      const outcome = slot.outcome;
      if (outcome === undefined) {
        // Not known yet: later commands wait, unless this one is already under way in order.
        if (!slot.pipelined) return;
        i++;
        continue;
      }
      if (outcome.kind === "command") {
        slot.outcome = undefined;
        let next: Outcome | Pipelined | undefined;
        try {
          next = this.flow.execute(session, slot, outcome);
        } catch (err) {
          next = internalFailure(err);
        }
        if (next === PIPELINED) {
          slot.pipelined = true;
          i++;
        } else if (next !== undefined) {
          slot.outcome = next;
        } else if (slot.outcome === undefined) {
          // Settled later; the messages after it wait.
          return;
        }
        continue;
      }
      if (i > 0) {
        i++;
        continue;
      }
      this.#slots.shift();
      if (this.#slots.length === 0) this.#slots = NONE as Slot[];
      if (!session.closing) writeReply(session, slot.id, outcome);
    }
  }

  /**
   * Graceful end: frames read but not yet started are answered "bad" with
   * `error`, so nothing is dropped unreported; those in flight finish.
   */
  refuseWaiting(error: ErrorInfo): void {
    for (let i = this.#backlogHead; i < this.#backlog.length; i++) {
      const id = idOf(this.#backlog[i]);
      if (id !== null && this.session.kind === "client") this.session.sendJson(JSON.stringify(statusReport(id, "bad", error)));
    }
    this.#backlog = NONE;
    this.#backlogHead = 0;
  }
}

/** The payload id of a frame, if it has one (for a report about a frame never worked on, or a fatal one). */
export function idOf(value: unknown): string | null {
  const payload = (value as { payload?: { id?: unknown } } | null)?.payload;
  return typeof payload?.id === "string" ? payload.id : null;
}
