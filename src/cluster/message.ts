/**
 * What travels on a cluster's channels. On a user's channel, one message per
 * ROUTE call carries that call's deliveries for the user, in order, each
 * `<seq> <node> <type length> <data length> <type><data>` (lengths in UTF-16
 * units, -1 for no data) and the next right after: no separator to escape,
 * and no JSON built or parsed for the message itself. The sending node
 * writes the head (node, lengths, type); the script puts the seq in front
 * and the data, which it has anyway, after. Control messages on a node's own
 * channel are small JSON objects.
 * @module
 */

/** A delivery as the receiving node reads it. */
export interface Notification {
  /** 0 when the message was not stored (no session acknowledges). */
  seq: number;
  origin: string;
  type: string;
  data: string | undefined;
}

/** The part of a notification the sending node writes: what comes between the seq and the data. */
export function encodeNotificationHead(origin: string, type: string, data: string | undefined): string {
  return `${origin} ${type.length} ${data === undefined ? -1 : data.length} ${type}`;
}

/** Every delivery in one channel message, in order; stops at the first that does not parse (never sent by a node of this version). */
export function decodeNotifications(text: string): Notification[] {
  const out: Notification[] = [];
  let at = 0;
  const field = () => {
    const end = text.indexOf(" ", at);
    if (end < 0) return undefined;
    const f = text.slice(at, end);
    at = end + 1;
    return f;
  };
  while (at < text.length) {
    const seq = Number(field());
    const origin = field();
    const typeLength = Number(field());
    const dataLength = Number(field());
    if (origin === undefined || !Number.isSafeInteger(seq) || !Number.isSafeInteger(typeLength) || !Number.isSafeInteger(dataLength)) break;
    if (typeLength < 0 || dataLength < -1 || at + typeLength + Math.max(0, dataLength) > text.length) break;
    const type = text.slice(at, (at += typeLength));
    const data = dataLength < 0 ? undefined : text.slice(at, (at += dataLength));
    out.push({ seq, origin, type, data });
  }
  return out;
}

/** On a node's control channel: a probe it sent itself, or another node asking it to disconnect a user's sessions. */
export type ControlMessage = { op: "probe"; id: string } | { op: "disconnect"; user: string; reason: string; from: string };

export function decodeControl(text: string): ControlMessage | undefined {
  try {
    const m = JSON.parse(text) as ControlMessage;
    if (m.op === "probe" && typeof m.id === "string") return m;
    if (m.op === "disconnect" && typeof m.user === "string" && typeof m.reason === "string") return m;
  } catch {
    // not ours
  }
  return undefined;
}
