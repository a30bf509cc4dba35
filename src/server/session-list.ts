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

  /**
   * Removes a member; false when it was none. A removed member keeps its
   * `listNext`, so a walk that has already taken it as the next one goes on
   * from there.
   */
  delete(item: T): boolean {
    if (!this.has(item)) return false;
    const prev = item.listPrev;
    const next = item.listNext;
    if (prev === undefined) this.#head = next;
    else prev.listNext = next;
    if (next === undefined) this.#tail = prev;
    else next.listPrev = prev;
    item.listPrev = undefined;
    this.#size--;
    return true;
  }

  /** Members in the order added; one removed during the walk is not met after its removal, as with a Set. */
  *[Symbol.iterator](): Iterator<T> {
    let item = this.#head;
    while (item !== undefined) {
      const next = item.listNext;
      if (this.has(item)) yield item;
      item = next;
    }
  }
}
