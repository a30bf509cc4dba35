/**
 * The `chat` handler: person-to-person messages. Data `{"to": "bob" | ["bob", ...], "body": "..."}`
 * is delivered to each recipient as `{"from": <sender>, "body": "..."}`.
 * Needs `"envelope": true`, so the recipients learn who wrote.
 *
 * Run alone: `bun run handlers/chat.ts SOCKET` (or `bester handler chat SOCKET`).
 *
 * @example alice sends type "chat" with `{"to": ["bob"], "body": "hi"}`; bob receives
 * `{"header":{"messageType":"receivedMessage"},"payload":{"data":{"from":"alice","body":"hi"},"type":"chat"}}`.
 *
 * @module
 */
import { fail, runHandlerMain, sendClients, type HandlerAnswer, type HandlerRequest } from "../src/sdk/handler.ts";

/** The data a chat message carries. */
export interface ChatData {
  to: string[];
  body: string;
}

/**
 * Checks that `data` is `{to, body}`; `to` may be one username or a non-empty list.
 *
 * @param data the message data
 * @returns the normalised message, or a problem naming the field
 * @example
 * ```ts
 * parseChat({ to: "bob", body: "hi" }); // { ok: true, chat: { to: ["bob"], body: "hi" } }
 * parseChat({ to: [], body: "hi" }); // { ok: false, problem: "data.to: expected a username or a non-empty list of usernames, got []" }
 * ```
 */
export function parseChat(data: unknown): { ok: true; chat: ChatData } | { ok: false; problem: string } {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, problem: `data: expected an object {"to", "body"}, got ${describe(data)}` };
  }
  const { to, body } = data as Record<string, unknown>;
  const list = typeof to === "string" ? [to] : to;
  if (!Array.isArray(list) || list.length === 0 || !list.every((u) => typeof u === "string" && u.trim() !== "")) {
    return { ok: false, problem: `data.to: expected a username or a non-empty list of usernames, got ${describe(to)}` };
  }
  if (typeof body !== "string") {
    return { ok: false, problem: `data.body: expected a string, got ${describe(body)}` };
  }
  return { ok: true, chat: { to: list as string[], body } };
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const json = JSON.stringify(value);
  return json.length <= 40 ? json : `${json.slice(0, 37)}...`;
}

/**
 * Answers `sendClients(to, { from: meta.from, body })`.
 *
 * @param request the gateway's request; must carry `meta`
 * @returns the answer for the gateway
 * @example
 * ```ts
 * handle({ data: { to: "bob", body: "hi" }, meta: { from: "alice", scope: "client", id: "m-1", type: "chat", via: [] } });
 * // => sendClients(["bob"], { from: "alice", body: "hi" })
 * ```
 */
export function handle({ data, meta }: HandlerRequest): HandlerAnswer {
  if (meta === undefined) {
    return fail('chat needs "envelope": true in its handler config, to tell recipients who wrote', "envelope_expected");
  }
  const parsed = parseChat(data);
  if (!parsed.ok) return fail(parsed.problem, "bad_request");
  return sendClients(parsed.chat.to, { from: meta.from, body: parsed.chat.body });
}

if (import.meta.main) await runHandlerMain(handle);
