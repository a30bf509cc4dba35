/**
 * Which sessions each user has open: a username may be connected several
 * times (several devices), and every session receives what is sent to the user.
 * @module
 */
import type { Session } from "./session.ts";

/**
 * A user's one session is stored as is; a Set appears only for a second
 * device, since most users have one connection and idle clients are many.
 */
type Entry = Session | Set<Session>;

export class ClientRegistry {
  #byUser = new Map<string, Entry>();
  #count = 0;

  add(session: Session): void {
    const name = session.username!;
    const entry = this.#byUser.get(name);
    if (entry === undefined) this.#byUser.set(name, session);
    else if (entry === session) return;
    else if (entry instanceof Set) {
      if (entry.has(session)) return;
      entry.add(session);
    } else this.#byUser.set(name, new Set([entry, session]));
    this.#count++;
  }

  remove(session: Session): void {
    const name = session.username;
    if (name === undefined) return;
    const entry = this.#byUser.get(name);
    if (entry === session) this.#byUser.delete(name);
    else if (entry instanceof Set && entry.delete(session)) {
      if (entry.size === 1) this.#byUser.set(name, entry.values().next().value!);
    } else return;
    this.#count--;
  }

  /** The user's session, or sessions when several are open; undefined when none. */
  lookup(username: string): Session | Set<Session> | undefined {
    return this.#byUser.get(username);
  }

  sessionsOf(username: string): Iterable<Session> | undefined {
    const entry = this.#byUser.get(username);
    return entry === undefined ? undefined : entry instanceof Set ? entry : [entry];
  }

  isConnected(username: string): boolean {
    return this.#byUser.has(username);
  }

  /** Connected usernames, sorted. */
  usernames(): string[] {
    return [...this.#byUser.keys()].sort();
  }

  /** Authenticated client sessions. */
  get sessionCount(): number {
    return this.#count;
  }
}
