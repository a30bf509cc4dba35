/** The bundled chat handler as a function: messages, and who is online. */
import { expect, test } from "bun:test";
import { chat } from "../../handlers/chat.ts";
import { fail, sendClients } from "../../src/sdk/handler.ts";

const meta = { from: "alice", scope: "client" as const, id: "m-1", type: "chat", via: [] };
const online = async () => ["alice", "bob"];

test("a message goes to its recipients, from its sender", async () => {
  expect(await chat({ data: { to: "bob", body: "hi" }, meta }, online)).toEqual(sendClients(["bob"], { from: "alice", body: "hi" }));
});

test('{"who": true} answers the asker with who is online', async () => {
  expect(await chat({ data: { who: true }, meta }, online)).toEqual(sendClients(["alice"], { online: ["alice", "bob"] }));
});

test("without an informer the question is answered bad, saying why", async () => {
  const none = () => Promise.reject(new Error("no informer socket: BESTER_INFORMER_SOCKET is empty"));
  expect(await chat({ data: { who: true }, meta }, none)).toEqual(fail("cannot tell who is online: no informer socket: BESTER_INFORMER_SOCKET is empty", "informer_unavailable"));
});
