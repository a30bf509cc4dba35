/**
 * Which sessions each user has open: a username may be connected several
 * times (several devices), and every session receives what is sent to the user.
 * @module
 */
import type { Session } from "./session.ts";

export class ClientRegistry {
  #byUser = new Map<string, Set<Session>>();
  #count = 0;

  add(session: Session): void {
    const name = session.username!;
    let set = this.#byUser.get(name);
    if (!set) this.#byUser.set(name, (set = new Set()));
    if (!set.has(session)) {
      set.add(session);
      this.#count++;
    }
  }

  remove(session: Session): void {
    const name = session.username;
    if (name === undefined) return;
    const set = this.#byUser.get(name);
    if (!set?.delete(session)) return;
    this.#count--;
    if (set.size === 0) this.#byUser.delete(name);
  }

  sessionsOf(username: string): ReadonlySet<Session> | undefined {
    return this.#byUser.get(username);
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
