/**
 * Decides what answers a client's message: the gateway itself (`dummy`,
 * `builtin`) or the handler registered for its type.
 * @module
 */
import { type ClientPayload, dataValue, parseBuiltinCommand } from "../protocol/messages.ts";
import { dummyReply, ErrorCodes, statusReport } from "../protocol/reports.ts";
import type { Outcome, RouteResult, Session } from "./session.ts";
import { type Stats, UNSERVED_TYPE } from "./stats.ts";

/** Carries a message to the handler of its type; the handler host implements this. */
export interface HandlerDispatch {
  types(): string[];
  /**
   * Counts the message and settles `outcome` once, when the handler has
   * answered (or failed to); false, doing nothing, when no handler serves its type.
   */
  dispatch(session: Session, payload: ClientPayload, outcome: Outcome): boolean;
}

/** The `builtin` commands the gateway answers itself (README, "Built-in messages"). */
export const BUILTIN_COMMANDS = ["close", "ping", "whoami", "types"] as const;

/** A good status report that also carries an answer (Extension: `payload.data`). */
function answer(id: string, data: unknown): object {
  return { header: { status: "good", messageType: "statusReport" }, payload: { id, data } };
}

export function createRouter(handlers: HandlerDispatch | undefined, stats: Stats) {
  function builtin(session: Session, payload: ClientPayload): RouteResult {
    const command = parseBuiltinCommand(dataValue(payload.data));
    if (!command.ok) {
      return { frames: [statusReport(payload.id, "bad", { code: ErrorCodes.malformed, message: command.problem.message })] };
    }
    switch (command.type) {
      case "close":
        return { frames: [], close: true };
      case "ping":
        return { frames: [statusReport(payload.id, "good")] };
      case "whoami":
        return {
          frames: [answer(payload.id, { username: session.username, listener: session.listener, connection: session.id })],
        };
      case "types":
        return {
          frames: [answer(payload.id, { handlers: handlers?.types() ?? [], builtin: ["dummy", "builtin"], commands: BUILTIN_COMMANDS })],
        };
      default:
        return {
          frames: [
            statusReport(payload.id, "bad", {
              code: ErrorCodes.unknownBuiltin,
              message: `unknown builtin command "${command.type}"; known: ${BUILTIN_COMMANDS.join(", ")}`,
            }),
          ],
        };
    }
  }

  return {
    /** Settles `outcome` once with what answers `payload`: at once, or when its handler has answered. */
    route(session: Session, payload: ClientPayload, outcome: Outcome): void {
      if (payload.type === "dummy") {
        stats.forType("dummy").messagesIn++;
        // A peer server gets its one status report; a client the dummy reply it expects.
        return outcome.settle({ frames: [session.kind === "server" ? statusReport(payload.id, "good") : dummyReply(payload.id)] });
      }
      if (payload.type === "builtin") {
        stats.forType("builtin").messagesIn++;
        return outcome.settle(builtin(session, payload));
      }
      if (handlers?.dispatch(session, payload, outcome)) return;
      stats.forType(UNSERVED_TYPE).messagesIn++;
      const known = handlers?.types() ?? [];
      outcome.settle({
        frames: [
          statusReport(payload.id, "bad", {
            code: ErrorCodes.unknownType,
            message: `no handler for type "${payload.type}"` + (known.length ? `; configured: ${known.join(", ")}` : ""),
          }),
        ],
      });
    },
  };
}
