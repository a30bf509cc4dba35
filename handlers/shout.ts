/**
 * The `shout` handler: shows `sendHandler`. Data `{"to", "body"}` is passed on
 * to the `chat` handler with the body in capitals; chat then delivers it (and,
 * with envelopes, still names the original sender, `meta.via` being `["shout"]`).
 * Works with or without an envelope.
 *
 * Run alone: `bun run handlers/shout.ts SOCKET` (or `bester handler shout SOCKET`).
 *
 * @example alice sends type "shout" with `{"to": "bob", "body": "hi"}`; bob receives
 * `{"from": "alice", "body": "HI"}` from the chat handler.
 *
 * @module
 */
import { fail, runHandlerMain, sendHandler, type HandlerAnswer, type HandlerRequest } from "../src/sdk/handler.ts";
import { parseChat } from "./chat.ts";

/**
 * Answers `sendHandler("chat", { to, body: body.toUpperCase() })`.
 *
 * @param request the gateway's request
 * @returns the answer for the gateway
 * @example
 * ```ts
 * handle({ data: { to: "bob", body: "hi" } }); // => sendHandler("chat", { to: ["bob"], body: "HI" })
 * ```
 */
export function handle({ data }: HandlerRequest): HandlerAnswer {
  const parsed = parseChat(data);
  if (!parsed.ok) return fail(parsed.problem, "bad_request");
  return sendHandler("chat", { to: parsed.chat.to, body: parsed.chat.body.toUpperCase() });
}

if (import.meta.main) await runHandlerMain(handle);
