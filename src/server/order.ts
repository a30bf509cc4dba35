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
import { type Command, internalFailure, type Outcome, type Settle } from "./outcome.ts";
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
   * Carries out a handler's command for the message of `slot`: its outcome,
   * or undefined when `slot` will be settled later (with a report, or with
   * the next handler's command along a sendHandler chain).
   */
  execute(session: S, slot: Slot, command: Command): Outcome | undefined;
}

/** One message in flight: its place in the order and, once known, its outcome. */
export class Slot implements Settle {
  outcome: Outcome | undefined = undefined;

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
  /** Set while the head's command is being carried out, so a settle from inside it does not re-enter. */
  #running = false;

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
   * Finishes messages from the head while their outcomes are known: a
   * command is carried out first (its outcome may come later), then the
   * reply is written. Commands run even after the client left, so its
   * message still reaches the recipients it was sent to.
   */
  settled(): void {
    if (this.#running) return;
    this.#running = true;
    const session = this.session;
    try {
      while (this.#slots.length > 0) {
        const slot = this.#slots[0]!;
        let outcome = slot.outcome;
        if (outcome === undefined) break;
        if (outcome.kind === "command") {
          slot.outcome = undefined;
          try {
            outcome = this.flow.execute(session, slot, outcome);
          } catch (err) {
            outcome = internalFailure(err);
          }
          // Settled later; or settled already, from inside the command.
          if (outcome === undefined) {
            if (slot.outcome === undefined) break;
            continue;
          }
          slot.outcome = outcome;
          if (outcome.kind === "command") continue;
        }
        this.#slots.shift();
        if (this.#slots.length === 0) this.#slots = NONE as Slot[];
        if (session.closing) continue;
        writeReply(session, slot.id, outcome);
      }
    } finally {
      this.#running = false;
    }
    if (session.closing) return;
    if (this.#slots.length === 0) session.orderIdle();
    this.pump();
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
