/**
 * The relay bench handler, written with the handler SDK: every request is
 * data `{"to": USER | [USER, ...], ...}`, and the answer delivers that same
 * data to `to` (`sendClients`). It is the "minimal relay" of PROTOCOL.md §4
 * and issue 7, and serves both connection modes (per-message, persistent).
 *
 * `bester bench` starts it as `bester bench handler SOCKET`; run alone:
 * `bun run src/bench/relay-handler.ts SOCKET`.
 *
 * @example Request `{"to":"bench-g0","s":1}` is answered
 * `{"header":{"status":"0","command":{"type":"sendClients","data":["bench-g0"]}},"data":{"to":"bench-g0","s":1}}`.
 *
 * @module
 */
import { fail, runHandlerMain, sendClients, type HandlerAnswer, type HandlerRequest } from "../sdk/handler.ts";

/**
 * Answers `sendClients(data.to, data)`.
 *
 * @param request the gateway's request (bare data: the bench config has no envelope)
 * @returns the answer for the gateway
 * @example
 * ```ts
 * handle({ data: { to: "bench-g0", s: 1 } }); // => sendClients(["bench-g0"], { to: "bench-g0", s: 1 })
 * ```
 */
export function handle({ data }: HandlerRequest): HandlerAnswer {
  const to = (data as { to?: unknown } | null)?.to;
  if (typeof to === "string" || (Array.isArray(to) && to.every((u) => typeof u === "string"))) {
    return sendClients(to as string | string[], data);
  }
  return fail('relay expects data {"to": USER or [USER, ...], ...}', "bad_request");
}

if (import.meta.main) await runHandlerMain(handle, { envelope: false });
