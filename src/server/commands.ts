/**
 * Carries out a handler's command (PROTOCOL.md §4) in its message's turn:
 * sendClients through the delivery seam, sendHandler to the next handler
 * (bounded hops), sendServers to peer servers (bounded server hops; see
 * peers.ts).
 * @module
 */
import type { HandlerHost } from "../handlers/host.ts";
import type { Logger } from "../log/logger.ts";
import { RawJson } from "../protocol/json-cut.ts";
import { ErrorCodes } from "../protocol/reports.ts";
import { quote } from "../guard.ts";
import type { Delivery } from "./delivery.ts";
import { ask } from "./exchange.ts";
import type { Slot } from "./order.ts";
import { bad, type Command, GOOD, type Outcome, type Pipelined, type Settle } from "./outcome.ts";
import type { Federation } from "./peers.ts";
import type { Session } from "./session.ts";
import type { Stats } from "./stats.ts";

export interface CommandDeps {
  handlers: HandlerHost;
  delivery: Delivery;
  /** Read per command, so a reload applies at once. */
  limits(): { maxHandlerHops: number };
  log: Logger;
  stats: Stats;
  federation: Federation;
}

export class Commands {
  constructor(private readonly deps: CommandDeps) {}

  /** The outcome of `command` for the message of `slot`, or undefined when `slot` is settled later. */
  execute(session: Session, slot: Slot, command: Command): Outcome | Pipelined | undefined {
    const type = command.entry.config.type;
    const { response } = command;
    const target = response.command!;
    switch (target.type) {
      case "sendClients":
        return this.#sendClients(slot, type, command, target.data, response.data);
      case "sendHandler":
        return this.#sendHandler(session, slot, command, target.data);
      case "sendServers":
        return this.#sendServers(session, slot, type, target.data, response.data);
      default:
        return bad({
          code: ErrorCodes.badCommand,
          message: `handler "${type}" answered with unknown command "${target.type}"; known: sendClients, sendHandler, sendServers`,
        });
    }
  }

  #sendClients(slot: Slot, type: string, command: Command, users: unknown, data: unknown): Outcome | Pipelined {
    const names = typeof users === "string" ? [users] : users;
    if (!Array.isArray(names) || !names.every((u) => typeof u === "string")) {
      return bad({ code: ErrorCodes.badCommand, message: `handler "${type}": sendClients needs a list of usernames, got ${quote(users)}` });
    }
    // A long answer's data goes on as the text it arrived as (RawJson).
    const dataJson = data instanceof RawJson ? data.text : JSON.stringify(data);
    return this.deps.delivery.deliver(names as string[], type, dataJson, command.counters, slot);
  }

  #sendHandler(session: Session, slot: Slot, command: Command, name: unknown): Outcome | undefined {
    const { handlers, log, stats } = this.deps;
    const type = command.entry.config.type;
    const next = typeof name === "string" ? handlers.get(name) : undefined;
    if (!next) {
      return bad({ code: ErrorCodes.badCommand, message: `handler "${type}": sendHandler names ${quote(name)}, which is not a configured handler` });
    }
    const chain = [...command.via, type];
    const maxHops = this.deps.limits().maxHandlerHops;
    if (chain.length > maxHops) {
      const path = [...chain, next.config.type].join(" -> ");
      log.warn("sendHandler hop limit reached", { chain: path });
      return bad({ code: ErrorCodes.hopLimit, message: `sendHandler chain longer than ${maxHops} hops: ${path}` });
    }
    // The next handler's answer settles the slot again: its command runs in this same turn.
    ask(next, stats.forType(next.config.type), session, slot.id, command.response.data, chain, slot);
    return undefined;
  }

  /**
   * Sends the answer's data to every named server at once; good only when
   * each one's status report said good.
   */
  #sendServers(session: Session, slot: Settle, type: string, servers: unknown, data: unknown): Outcome | undefined {
    const federation = this.deps.federation;
    const targets = typeof servers === "string" ? [servers] : servers;
    if (!Array.isArray(targets) || !targets.every((t) => typeof t === "string")) {
      return bad({ code: ErrorCodes.badCommand, message: `handler "${type}": sendServers needs a list of "host:port" strings, got ${quote(servers)}` });
    }
    // A client's message has made no server hop yet.
    const hops = (session.server?.hops ?? 0) + 1;
    if (hops > federation.maxHops) {
      this.deps.log.warn("sendServers hop limit reached", { type, hops, peer: session.server?.peer });
      return bad({
        code: ErrorCodes.hopLimit,
        message: `sendServers would make server hop ${hops}, more than federation.maxHops (${federation.maxHops}) allows; a forwarding loop?`,
      });
    }
    federation.send(targets as string[], { type, data }, hops).then(
      (failed) => {
        if (failed.length === 0) return slot.settle(GOOD);
        const n = new Set(targets).size;
        // A loop stopped further along stays recognisable as one at every server it passed.
        const code = failed.every((f) => f.code === ErrorCodes.hopLimit) ? ErrorCodes.hopLimit : ErrorCodes.peerFailed;
        const list = failed.map((f) => `${f.server} (${f.code}: ${f.message})`).join("; ");
        // Extension: which servers failed and why, for machines (header.failedServers).
        slot.settle(bad({ code, message: `${failed.length} of ${n} server${n === 1 ? "" : "s"} did not accept the message: ${list}` }, { failedServers: failed }));
      },
      (err: Error) => slot.settle(bad({ code: ErrorCodes.internal, message: err.message })),
    );
    return undefined;
  }
}
