/**
 * Where a `sendClients` ends: a message for named users, delivered to every
 * session each of them has open. The one seam through which every delivery
 * to users passes (a handler's command, the control API's messages).
 * @module
 */
import { encodeJsonFrame } from "../protocol/frame.ts";
import { DELIVERY_HEAD, deliveryTail, receivedMessageJson } from "../protocol/reports.ts";
import { RawJson } from "../protocol/json-cut.ts";
import type { ClientRegistry } from "./registry.ts";
import type { Session } from "./session.ts";
import type { TypeStats } from "./stats.ts";

/**
 * A message on its way to users: its frame in three parts (head, data,
 * tail), written straight into each session's queue without joining them.
 */
export interface Outgoing {
  head: string;
  body: string;
  tail: string;
  /** Counters of the type that produced it (deliveries are counted there). */
  counters: TypeStats;
}

/** The `receivedMessage` frame of `data` from `type`, as the parts of an {@link Outgoing}. */
export function outgoing(type: string, data: unknown, counters: TypeStats): Outgoing {
  const dataJson = data instanceof RawJson ? data.text : JSON.stringify(data);
  // Data JSON cannot carry (undefined): the key is left out, as JSON.stringify does.
  if (dataJson === undefined) return { head: receivedMessageJson(type, undefined), body: "", tail: "", counters };
  return { head: DELIVERY_HEAD, body: dataJson, tail: deliveryTail(type), counters };
}

/** Who a delivery did not reach; absent when it reached everyone. */
export interface Unreached {
  /** Users with no session open. */
  offline?: string[];
  /** Users with sessions, none of which took the message (closing, or cut as slow consumers). */
  failed?: string[];
}

export class Delivery {
  constructor(private readonly registry: ClientRegistry) {}

  /**
   * Delivers `message` to every session of each named user (each user once,
   * however often named); undefined when everyone was reached.
   */
  deliver(names: string[], message: Outgoing): Unreached | undefined {
    const { head, body, tail, counters } = message;
    // The usual case, one user with one session, needs no closure and no list.
    if (names.length === 1) {
      const found = this.registry.lookup(names[0]!);
      if (found !== undefined && !(found instanceof Set)) {
        if (!found.sendJson(head, body, tail)) return { failed: names };
        counters.delivered++;
        return undefined;
      }
    }
    let frame: Uint8Array | undefined;
    let recipients = 0;
    let offline: string[] | undefined;
    let failed: string[] | undefined;
    const deliver = (s: Session, name: string) => {
      // Any further recipients share one encoding.
      const sent = recipients++ === 0 ? s.sendJson(head, body, tail) : s.sendBytes((frame ??= encodeJsonFrame(head + body + tail)));
      if (sent) counters.delivered++;
      else if (!failed?.includes(name)) (failed ??= []).push(name);
    };
    for (const name of names.length === 1 ? names : new Set(names)) {
      const found = this.registry.lookup(name);
      if (found === undefined) {
        (offline ??= []).push(name);
        continue;
      }
      if (!(found instanceof Set)) {
        deliver(found, name);
        continue;
      }
      for (const s of found) deliver(s, name);
    }
    if (offline === undefined && failed === undefined) return undefined;
    return { ...(offline === undefined ? {} : { offline }), ...(failed === undefined ? {} : { failed }) };
  }
}
