/**
 * The informer's commands (PROTOCOL.md §7): one request in, one reply out,
 * nothing else touched. Answered synchronously, but for a gateway in a
 * cluster, whose answers about clients come from Redis: the connection
 * keeps the replies in order.
 * @module
 */
import { isRecord, quote } from "../guard.ts";
import { type ErrorInfo, ErrorCodes } from "../protocol/reports.ts";
import type { Endpoint } from "../runtime/types.ts";

/** What the informer may read of the gateway. */
export interface InformerView {
  /** Connected client usernames, sorted, each once (every node's, in a cluster). */
  usernames(): string[] | Promise<string[]>;
  isConnected(username: string): boolean | Promise<boolean>;
  /** Authenticated client sessions (a user on two devices counts twice; every node's in a cluster). */
  clientCount(): number | Promise<number>;
  /** `admin.info` from the config in force. */
  adminInfo(): unknown;
  listeners(): { kind: string; address: Endpoint }[];
}

/** A reply frame: `status` "0" with the result, or "1" with `error` (Extension) saying why. */
export interface InformerReply {
  status: "0" | "1";
  data: unknown;
  error?: ErrorInfo;
}

export const INFORMER_COMMANDS = ["listClients", "isClient", "serverInfo", "quit"] as const;

const failed = (code: string, message: string): InformerReply => ({ status: "1", data: null, error: { code, message } });
const done = (data: unknown): InformerReply => ({ status: "0", data });

/**
 * `listeners` keyed as the original's serverInfo keyed them (`listener0`,
 * ...), each an object of its parts where the original gave one string
 * (`"tcp4://0.0.0.0:2223"`): README, "Informer".
 */
function listenersBlock(view: InformerView): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  view.listeners().forEach(({ kind, address }, i) => {
    out[`listener${i}`] =
      address.kind === "unix" ? { type: kind, address: address.path } : { type: kind, address: address.host, port: address.port };
  });
  return out;
}

/** `f` of a value, or of a promised one; a failure to get it is the request's error. */
function settled<T>(value: T | Promise<T>, f: (v: T) => Answer): Answer | Promise<Answer> {
  if (!(value instanceof Promise)) return f(value);
  return value.then(f, (err: Error) => ({ reply: failed(ErrorCodes.storeUnavailable, `cluster: ${err.message}`), quit: false }));
}

/**
 * Answers one request `{"command": {"type": ..., "data": ...}}`.
 * @returns the reply, and whether the connection ends after it (`quit`)
 */
export type Answer = { reply: InformerReply; quit: boolean };

export function answerInformer(request: unknown, view: InformerView): Answer | Promise<Answer> {
  const command = isRecord(request) ? request["command"] : undefined;
  if (!isRecord(command)) {
    return { reply: failed(ErrorCodes.malformed, `command: expected an object {"type", "data"}, got ${quote(isRecord(request) ? command : request)}`), quit: false };
  }
  const type = command["type"];
  if (typeof type !== "string") {
    return { reply: failed(ErrorCodes.malformed, `command.type: expected a string, got ${quote(type)}`), quit: false };
  }
  const data = command["data"];
  switch (type) {
    case "listClients":
      return settled(view.usernames(), (names) => ({ reply: done(names), quit: false }));
    case "isClient":
      if (typeof data !== "string") {
        return { reply: failed(ErrorCodes.malformed, `command.data: expected a username (a string), got ${quote(data)}`), quit: false };
      }
      // Usernames are trimmed at login, so the question is too.
      return settled(view.isConnected(data.trim()), (connected) => ({ reply: done(connected), quit: false }));
    case "serverInfo":
      return settled(view.clientCount(), (clientCount) => ({
        reply: done({ clientCount, adminInfo: view.adminInfo() ?? null, listeners: listenersBlock(view) }),
        quit: false,
      }));
    case "quit":
      return { reply: done(null), quit: true };
    default:
      return {
        reply: failed(ErrorCodes.unknownCommand, `unknown command ${quote(type)}; known: ${INFORMER_COMMANDS.join(", ")}`),
        quit: false,
      };
  }
}
