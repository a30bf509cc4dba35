/**
 * The gateway's open sessions as a list linked through the sessions
 * themselves. A Set would keep a hash-table entry for each, several times
 * the size of the two fields a member carries here, and idle connections
 * are many; nothing looks a session up in it, it is only added to, removed
 * from, counted and walked.
 * @module
 */

/** A member: its neighbours, set by the list alone. */
export interface ListMember<T> {
  listPrev: T | undefined;
  listNext: T | undefined;
}

export class SessionList<T extends ListMember<T>> {
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  has(item: T): boolean {
    return item.listPrev !== undefined || this.#head === item;
  }

  /** Adds at the end, so a walk meets sessions oldest first; adding a member again does nothing. */
  add(item: T): void {
    if (this.has(item)) return;
    item.listPrev = this.#tail;
    item.listNext = undefined;
    if (this.#tail === undefined) this.#head = item;
    else this.#tail.listNext = item;
    this.#tail = item;
    this.#size++;
  }

  /** Removes a member; false when it was none. */
  delete(item: T): boolean {
    if (!this.has(item)) return false;
    const prev = item.listPrev;
    const next = item.listNext;
    if (prev === undefined) this.#head = next;
    else prev.listNext = next;
    if (next === undefined) this.#tail = prev;
    else next.listPrev = prev;
    // Nothing left pointing on: a removed session that something still holds keeps no other alive.
    item.listPrev = undefined;
    item.listNext = undefined;
    this.#size--;
    return true;
  }

  /**
   * The members at the start of the walk, in the order added, each as long
   * as it is still one when reached: removing any member during the walk is
   * safe, as with a Set, but one added meanwhile is not met. Walks are rare
   * (metrics, shutdown, a cluster rejoin) and read every member anyway.
   */
  *[Symbol.iterator](): Iterator<T> {
    const members: T[] = [];
    for (let item = this.#head; item !== undefined; item = item.listNext) members.push(item);
    for (const item of members) if (this.has(item)) yield item;
  }
}
