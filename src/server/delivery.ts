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
 * The `receivedMessage` frame of `data` from `type`, as three parts (head,
 * data, tail) that each session's queue encodes without joining them.
 */
export function deliveryParts(type: string, data: unknown): [head: string, body: string, tail: string] {
  const dataJson = data instanceof RawJson ? data.text : JSON.stringify(data);
  // Data JSON cannot carry (undefined): the key is left out, as JSON.stringify does.
  if (dataJson === undefined) return [receivedMessageJson(type, undefined), "", ""];
  return [DELIVERY_HEAD, dataJson, deliveryTail(type)];
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
   * Delivers the frame `head + body + tail` to every session of each named
   * user (each user once, however often named), counting each delivery in
   * `counters` (the producing type's); undefined when everyone was reached.
   * The frame comes in parts so the usual delivery allocates nothing.
   */
  deliver(names: string[], head: string, body: string, tail: string, counters: TypeStats): Unreached | undefined {
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
