/**
 * The `echo` handler: sends every message back to the user who sent it.
 * Needs `"envelope": true`, since only the envelope says who the sender is.
 *
 * Run alone: `bun run handlers/echo.ts SOCKET` (or `bester handler echo SOCKET`).
 *
 * @example A client sending type "echo" with data `{"n": 1}` receives
 * `{"header":{"messageType":"receivedMessage"},"payload":{"data":{"n":1},"type":"echo"}}`.
 *
 * @module
 */
import { fail, runHandlerMain, sendClients, type HandlerAnswer, type HandlerRequest } from "../src/sdk/handler.ts";

/**
 * Answers `sendClients([meta.from], data)`.
 *
 * @param request the gateway's request; must carry `meta`
 * @returns the answer for the gateway
 * @example
 * ```ts
 * handle({ data: 1, meta: { from: "alice", scope: "client", id: "m-1", type: "echo", via: [] } });
 * // => sendClients(["alice"], 1)
 * ```
 */
export function handle({ data, meta }: HandlerRequest): HandlerAnswer {
  if (meta === undefined) {
    return fail('echo needs "envelope": true in its handler config, to know whom to send the message back to', "envelope_expected");
  }
  return sendClients([meta.from], data);
}

if (import.meta.main) await runHandlerMain(handle);
