/** SessionList: the gateway's sessions, linked through themselves; it must behave as the Set it replaced. */
import { describe, expect, test } from "bun:test";
import { type ListMember, SessionList } from "../../src/server/session-list.ts";

class Item implements ListMember<Item> {
  listPrev: Item | undefined;
  listNext: Item | undefined;
  constructor(readonly n: number) {}
}

const names = (list: SessionList<Item>) => [...list].map((i) => i.n);

describe("SessionList", () => {
  test("against a Set: random adds and deletes keep the same members, order and size", () => {
    const list = new SessionList<Item>();
    const set = new Set<Item>();
    const items = Array.from({ length: 40 }, (_, i) => new Item(i));
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let step = 0; step < 5000; step++) {
      const item = items[next() % items.length]!;
      if (next() % 3 === 0) expect(list.delete(item)).toBe(set.delete(item));
      else {
        list.add(item);
        set.add(item);
      }
      expect(list.size).toBe(set.size);
      expect(list.has(item)).toBe(set.has(item));
      if (step % 50 === 0) expect(names(list)).toEqual([...set].map((i) => i.n));
    }
  });

  test("deleting during a walk: the member being visited, the next ones, and all of them", () => {
    const make = () => {
      const list = new SessionList<Item>();
      const items = [0, 1, 2, 3, 4].map((n) => new Item(n));
      for (const i of items) list.add(i);
      return { list, items };
    };
    let { list, items } = make();
    const seen: number[] = [];
    for (const i of list) {
      seen.push(i.n);
      list.delete(i);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(list.size).toBe(0);
    expect(names(list)).toEqual([]);

    ({ list, items } = make());
    seen.length = 0;
    for (const i of list) {
      seen.push(i.n);
      // The walk has taken the next member already; it must skip it once deleted.
      if (i.n === 1) {
        list.delete(items[2]!);
        list.delete(items[3]!);
      }
    }
    expect(seen).toEqual([0, 1, 4]);
    expect(names(list)).toEqual([0, 1, 4]);
    // A removed member points at nothing: one still held elsewhere keeps no other session alive.
    expect([items[2]!.listPrev, items[2]!.listNext, items[3]!.listPrev, items[3]!.listNext]).toEqual([undefined, undefined, undefined, undefined]);
    list.add(items[2]!);
    expect(names(list)).toEqual([0, 1, 4, 2]);
    expect(list.delete(items[3]!)).toBe(false);
    expect(list.size).toBe(4);
  });
});
