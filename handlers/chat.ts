/**
 * The `chat` handler: person-to-person messages. Data `{"to": "bob" | ["bob", ...], "body": "..."}`
 * is delivered to each recipient as `{"from": <sender>, "body": "..."}`.
 * Data `{"who": true}` asks who is online: the asker receives `{"online": ["alice", "bob"]}`,
 * from the gateway's informer (PROTOCOL.md §7).
 * Needs `"envelope": true`, so the recipients learn who wrote.
 *
 * Run alone: `bun run handlers/chat.ts SOCKET [INFORMER]` (or `bester handler chat SOCKET [INFORMER]`).
 *
 * @example alice sends type "chat" with `{"to": ["bob"], "body": "hi"}`; bob receives
 * `{"header":{"messageType":"receivedMessage"},"payload":{"data":{"from":"alice","body":"hi"},"type":"chat"}}`.
 *
 * @module
 */
import { fail, runHandlerMain, sendClients, type HandlerAnswer, type HandlerRequest } from "../src/sdk/handler.ts";
import { connectInformer, type InformerClient } from "../src/sdk/informer.ts";

/** Who is connected now, sorted; rejects when the gateway cannot say (no informer). */
export type ListOnline = () => Promise<string[]>;

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

/** Whether `data` asks who is online: `{"who": true}`. */
function asksWho(data: unknown): boolean {
  return typeof data === "object" && data !== null && (data as Record<string, unknown>)["who"] === true;
}

/**
 * Answers `sendClients(to, { from: meta.from, body })`; for `{"who": true}`,
 * `sendClients([meta.from], { online })` with the users `listOnline` names.
 *
 * @param request the gateway's request; must carry `meta`
 * @param listOnline who is online (the informer's `listClients`)
 * @returns the answer for the gateway
 * @example
 * ```ts
 * chat({ data: { to: "bob", body: "hi" }, meta: { from: "alice", scope: "client", id: "m-1", type: "chat", via: [] } }, online);
 * // => sendClients(["bob"], { from: "alice", body: "hi" })
 * ```
 */
export function chat({ data, meta }: HandlerRequest, listOnline: ListOnline): HandlerAnswer | Promise<HandlerAnswer> {
  if (meta === undefined) {
    return fail('chat needs "envelope": true in its handler config, to tell recipients who wrote', "envelope_expected");
  }
  if (asksWho(data)) {
    const from = meta.from;
    return listOnline().then(
      (online) => sendClients([from], { online }),
      (err: Error) => fail(`cannot tell who is online: ${err.message}`, "informer_unavailable"),
    );
  }
  const parsed = parseChat(data);
  if (!parsed.ok) return fail(parsed.problem, "bad_request");
  return sendClients(parsed.chat.to, { from: meta.from, body: parsed.chat.body });
}

/**
 * The informer, connected on the first question and again after it was
 * lost; none when the gateway runs without one.
 */
function informerList(): ListOnline {
  let informer: Promise<InformerClient> | undefined;
  return async () => {
    const current = (informer ??= connectInformer().then((client) => {
      void client.closed.then(() => {
        if (informer === current) informer = undefined;
      });
      return client;
    }));
    try {
      return await (await current).listClients();
    } catch (err) {
      if (informer === current) informer = undefined;
      throw err;
    }
  };
}

const online = informerList();

/**
 * The handler as the gateway runs it: {@link chat} with the gateway's informer.
 *
 * @param request the gateway's request; must carry `meta`
 * @returns the answer for the gateway
 * @example
 * ```ts
 * handle({ data: { to: "bob", body: "hi" }, meta: { from: "alice", scope: "client", id: "m-1", type: "chat", via: [] } });
 * // => sendClients(["bob"], { from: "alice", body: "hi" })
 * ```
 */
export function handle(request: HandlerRequest): HandlerAnswer | Promise<HandlerAnswer> {
  return chat(request, online);
}

if (import.meta.main) await runHandlerMain(handle);
