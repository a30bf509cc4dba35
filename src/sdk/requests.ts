/**
 * A gateway's requests as a handler reads them: the bare data, or an
 * envelope saying who sent it (`"envelope": true` in the gateway's config).
 * @module
 */
import { isRecord } from "../guard.ts";
import { fail, type HandlerAnswer } from "./answers.ts";

/**
 * Where a request came from, present when the gateway sends envelopes
 * (`"envelope": true` in the handler's config).
 *
 * @example
 * ```ts
 * const handle: HandleFunction = ({ data, meta }) =>
 *   meta ? sendClients([meta.from], { seenBy: meta.via, data }) : fail("needs an envelope");
 * ```
 */
export interface HandlerMeta {
  /** The original sender's username (or the peer server, for server-scope messages). */
  from: string;
  /** "client" or "server": how the original message entered the gateway. */
  scope: string;
  /** The originator's message id. */
  id: string;
  /** The handler type this request is addressed to: the message's type, or the `sendHandler` target. */
  type: string;
  /** Handler types this message already passed through by `sendHandler`, oldest first. */
  via: string[];
}

/**
 * One request from the gateway.
 *
 * @example
 * ```ts
 * const handle: HandleFunction = (request: HandlerRequest) => sendClients(["ops"], request.data);
 * ```
 */
export interface HandlerRequest {
  /** The client's `payload.data`: any JSON value. */
  data: unknown;
  /** Set only for envelope requests; see {@link ServeHandlerOptions.envelope}. */
  meta?: HandlerMeta;
}

/**
 * How to read each request:
 * - `true`: every request must be an envelope `{data, meta}`; any other value is
 *   answered with `fail(..., "envelope_expected")` without calling `handle`.
 * - `false`: every request is the bare data, whatever it looks like; `meta` is never set.
 * - `"auto"` (default): a request is read as an envelope when it is an object with
 *   exactly the keys `data` and `meta`, and `meta.from` is a string; otherwise it is
 *   the bare data. Pick `true` or `false` if clients may send values of that shape.
 *
 * A handler cannot tell a gateway's envelope from a client's data shaped like
 * one, so a handler that trusts `meta.from` must be configured with
 * `"envelope": true` in the gateway: only then is every request wrapped.
 *
 * @example
 * ```ts
 * await serveHandler({ socket: "/tmp/h.sock", envelope: false, handle: ({ data }) => sendClients(["log"], data) });
 * ```
 */
export type EnvelopeMode = boolean | "auto";

function isEnvelope(value: unknown): value is { data: unknown; meta: Record<string, unknown> } {
  if (!isRecord(value)) return false;
  const keys = Object.keys(value);
  return (
    keys.length === 2 &&
    Object.hasOwn(value, "data") &&
    isRecord(value["meta"]) &&
    typeof value["meta"]["from"] === "string"
  );
}

/** The request in `value`, read as `mode` says; an answer when it cannot be read so. */
export function requestOf(value: unknown, mode: EnvelopeMode): HandlerRequest | HandlerAnswer {
  if (mode === false || (mode === "auto" && !isEnvelope(value))) return { data: value };
  if (!isEnvelope(value)) {
    return fail(
      'expected an envelope {"data", "meta": {"from", ...}}: set "envelope": true for this handler in the gateway config',
      "envelope_expected",
    );
  }
  const meta = value.meta;
  const via = Array.isArray(meta["via"]) ? meta["via"].filter((t): t is string => typeof t === "string") : [];
  return { data: value.data, meta: { ...(meta as unknown as HandlerMeta), via } };
}
