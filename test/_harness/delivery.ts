/**
 * The frames and waits the delivery and cluster suites share (PROTOCOL.md §9):
 * a relay through the scripted handler, the ack builtin, a login that may ask
 * for acknowledged delivery, and reading reports and deliveries in order.
 */
import { openWire, type Target, type Wire } from "./wire.ts";

/** A message the scripted relay handler delivers to `to`. */
export const relay = (id: string, to: string[], body: unknown) => ({ payload: { type: "relay", id, data: { do: "deliver", to, body } } });

/** The ack builtin; `seq` as given, so a test may send one that is not a number. */
export const ack = (id: string, seq: unknown) => ({ payload: { type: "builtin", id, data: { command: { type: "ack", args: { seq } } } } });

/** Logs in, asking for acknowledged delivery or not; returns the wire and the login report. */
export async function connectDelivering(target: Target, user: string, acknowledge: boolean): Promise<{ wire: Wire; report: any }> {
  const wire = await openWire(target);
  const header: Record<string, unknown> = { scope: "client", authentication: { username: user, password: "pw" } };
  if (acknowledge) header["delivery"] = { ack: true };
  wire.send({ header, payload: { type: "dummy", id: "login", data: null } });
  const report = await wire.next();
  if (report.payload?.id !== "auth_special" || report.header?.status !== "good") throw new Error(`login failed: ${JSON.stringify(report)}`);
  return { wire, report };
}

/** The next frame, which must be the status report for `id`. */
export async function reportOf(wire: Wire, id: string): Promise<any> {
  const r = await wire.next();
  if (r.header?.messageType !== "statusReport" || r.payload?.id !== id) throw new Error(`expected the report for ${id}, got ${JSON.stringify(r)}`);
  return r;
}

/** The next `n` frames, which must be deliveries: their seq (or undefined) and data. */
export async function deliveries(wire: Wire, n: number): Promise<Array<[number | undefined, unknown]>> {
  const out: Array<[number | undefined, unknown]> = [];
  for (let i = 0; i < n; i++) {
    const f = await wire.next();
    if (f.header?.messageType !== "receivedMessage") throw new Error(`expected a delivery, got ${JSON.stringify(f)}`);
    out.push([f.header.seq, f.payload.data]);
  }
  return out;
}
