/** keySlot against slots a real Redis Cluster gives (CLUSTER KEYSLOT, from Redis's documentation and its test suite). */
import { expect, test } from "bun:test";
import { keySlot } from "../../src/redis/key-slot.ts";

test("slots as Redis computes them, hash tags included", () => {
  expect(keySlot("123456789")).toBe(12739); // CRC16/XMODEM check value 0x31C3 mod 16384
  expect(keySlot("foo")).toBe(12182);
  expect(keySlot("{user1000}.following")).toBe(keySlot("user1000"));
  expect(keySlot("{user1000}.followers")).toBe(keySlot("{user1000}.following"));
  expect(keySlot("foo{}{bar}")).toBe(keySlot("foo{}{bar}")); // an empty tag: the whole key
  expect(keySlot("foo{}{bar}")).not.toBe(keySlot("bar"));
  expect(keySlot("foo{{bar}}zap")).toBe(keySlot("{bar"));
  expect(keySlot("p:{u:émile}:s")).toBe(keySlot("u:émile"));
});
