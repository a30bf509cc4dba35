/** The notifications on a user's channel: several in one message, each as the sending node wrote it with the seq in front. */
import { expect, test } from "bun:test";
import { decodeNotifications, encodeNotificationHead } from "../../src/cluster/message.ts";

test("deliveries joined as the ROUTE script joins them come back one by one, in order, whatever their text holds", () => {
  const sent = [
    { seq: 7, origin: "gw-1", type: "chat", data: '{"text":"a b 12 -1 ü 😀"}' },
    { seq: 0, origin: "gw-1", type: "with space", data: undefined },
    { seq: 8, origin: "gw-1", type: "chat", data: "" },
    { seq: 9, origin: "gw-1", type: "t", data: "3 gw-2 1 1 xy" },
  ];
  const text = sent.map((n) => `${n.seq} ${encodeNotificationHead(n.origin, n.type, n.data)}${n.data ?? ""}`).join("");
  expect(decodeNotifications(text)).toEqual(sent);
});

test("text that is not a notification yields what parsed before it, nothing made up", () => {
  const good = `1 ${encodeNotificationHead("a", "t", "x")}x`;
  expect(decodeNotifications(`${good}garbage`)).toEqual([{ seq: 1, origin: "a", type: "t", data: "x" }]);
  expect(decodeNotifications(`1 a 5 10 short`)).toEqual([]);
  expect(decodeNotifications("")).toEqual([]);
});
