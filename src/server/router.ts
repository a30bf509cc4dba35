/**
 * Decides what answers a client's message: the gateway itself (`dummy`,
 * `builtin`) or the handler registered for its type, asked through the
 * exchange.
 * @module
 */
import type { HandlerHost } from "../handlers/host.ts";
import { type ClientPayload, dataValue, parseBuiltinCommand } from "../protocol/messages.ts";
import { ErrorCodes } from "../protocol/reports.ts";
import { ask, NO_HOPS } from "./exchange.ts";
import { bad, CLOSE, DUMMY, GOOD, good, type Outcome, type Settle } from "./outcome.ts";
import type { Delivery } from "./delivery.ts";
import type { Session } from "./session.ts";
import { type Stats, UNSERVED_TYPE } from "./stats.ts";

/** The `builtin` commands the gateway answers itself (README, "Built-in messages"). */
export const BUILTIN_COMMANDS = ["close", "ping", "whoami", "types", "ack"] as const;

export class Router {
  constructor(
    private readonly handlers: HandlerHost,
    private readonly stats: Stats,
    private readonly delivery: Delivery,
  ) {}

  /** Settles `slot` once with what answers `payload`: at once, or when its handler has answered. */
  route(session: Session, payload: ClientPayload, slot: Settle): void {
    if (payload.type === "dummy") {
      this.stats.forType("dummy").messagesIn++;
      return slot.settle(DUMMY);
    }
    if (payload.type === "builtin") {
      this.stats.forType("builtin").messagesIn++;
      const command = parseBuiltinCommand(dataValue(payload.data));
      // Acknowledgements go to the delivery store: answered when it has taken them.
      if (command.ok && command.type === "ack") {
        const seq = (command.args as { seq?: unknown } | null)?.seq;
        this.delivery.ack(session, seq).then((outcome) => slot.settle(outcome));
        return;
      }
      return slot.settle(this.#builtin(session, command));
    }
    const entry = this.handlers.get(payload.type);
    if (entry !== undefined) {
      const counters = this.stats.forType(entry.config.type);
      counters.messagesIn++;
      return ask(entry, counters, session, payload.id, payload.data, NO_HOPS, slot);
    }
    this.stats.forType(UNSERVED_TYPE).messagesIn++;
    const known = this.handlers.types();
    slot.settle(
      bad({
        code: ErrorCodes.unknownType,
        message: `no handler for type "${payload.type}"` + (known.length ? `; configured: ${known.join(", ")}` : ""),
      }),
    );
  }

  #builtin(session: Session, command: ReturnType<typeof parseBuiltinCommand>): Outcome {
    if (!command.ok) return bad({ code: ErrorCodes.malformed, message: command.problem.message });
    switch (command.type) {
      case "close":
        return CLOSE;
      case "ping":
        return GOOD;
      case "whoami":
        return good(undefined, { username: session.username, listener: session.listener, connection: session.id });
      case "types":
        return good(undefined, { handlers: this.handlers.types(), builtin: ["dummy", "builtin"], commands: BUILTIN_COMMANDS });
      default:
        return bad({
          code: ErrorCodes.unknownBuiltin,
          message: `unknown builtin command "${command.type}"; known: ${BUILTIN_COMMANDS.join(", ")}`,
        });
    }
  }
}
