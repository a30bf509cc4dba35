/**
 * What travels on a cluster's channels. A delivery on a user's channel is
 * text the Lua script prefixes with the seq: `<seq> <node> <type length>
 * <type><flag><data>` (flag `=` then the data's JSON, or `-` for none), so no
 * JSON is built or parsed for the message itself. Control messages on a
 * node's own channel are small JSON objects.
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

/** The part of a notification the sending node writes (the script puts the seq in front). */
export function encodeNotification(origin: string, type: string, data: string | undefined): string {
  return `${origin} ${type.length} ${type}${data === undefined ? "-" : "=" + data}`;
}

/** Undefined for text that is not a notification (never sent by a node of this version). */
export function decodeNotification(text: string): Notification | undefined {
  const a = text.indexOf(" ");
  const b = text.indexOf(" ", a + 1);
  const c = text.indexOf(" ", b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const seq = Number(text.slice(0, a));
  const typeLength = Number(text.slice(b + 1, c));
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(typeLength)) return undefined;
  const typeEnd = c + 1 + typeLength;
  const flag = text[typeEnd];
  if (flag !== "=" && flag !== "-") return undefined;
  return {
    seq,
    origin: text.slice(a + 1, b),
    type: text.slice(c + 1, typeEnd),
    data: flag === "=" ? text.slice(typeEnd + 1) : undefined,
  };
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
