/**
 * Failed logins counted per source address and per username, and the holds
 * they earn, in the manner of ejabberd's mod_fail2ban and OpenSSH's
 * PerSourcePenalties.
 *
 * - After `perSource` failures from one address, that address is held back.
 * - After failures for one username from `perUsername` different addresses,
 *   that username is held back. Only different addresses count: one address
 *   hammering a name is the source rule's business, and must not lock the
 *   name's owner out from elsewhere.
 *
 * A hold lasts `penaltyMs`, doubled at each further hold up to
 * `maxPenaltyMs`; while it lasts, logins are refused without a password
 * check. Failures and holds are forgotten after `forgetMs` without a failure.
 * @module
 */
import type { LoginFailuresConfig } from "../config/types.ts";

export type ThrottleSettings = LoginFailuresConfig;

export type HoldKind = "source" | "username";

export interface Hold {
  by: HoldKind;
  /** The source address or the username held back. */
  key: string;
  /** How long from now. */
  ms: number;
}

/** One source's or one username's failures and holds. */
interface Tally {
  failures: number;
  /** Username tallies: the sources that failed since the last hold (failures is their number). */
  sources: Set<string> | undefined;
  lastFailureAt: number;
  heldUntil: number;
  /** Holds so far (the next one lasts 2^holds times the first). */
  holds: number;
}

/** Tallies by key, forgetting the oldest past a size: addresses and names are chosen by whoever connects. */
class Tallies {
  readonly #map = new Map<string, Tally>();

  constructor(private readonly capacity: number) {}

  get(key: string): Tally | undefined {
    return this.#map.get(key);
  }

  /** The tally of `key`, made or moved to the newest end. */
  touch(key: string): Tally {
    let t = this.#map.get(key);
    if (t !== undefined) this.#map.delete(key);
    else t = { failures: 0, sources: undefined, lastFailureAt: 0, heldUntil: 0, holds: 0 };
    this.#map.set(key, t);
    // A flood of new keys forgets the oldest tallies first, held or not: the map cannot grow without bound.
    if (this.#map.size > this.capacity) this.#map.delete(this.#map.keys().next().value!);
    return t;
  }

  /** How many are held back now. */
  held(now: number): number {
    let n = 0;
    for (const t of this.#map.values()) if (t.heldUntil > now) n++;
    return n;
  }
}

export class LoginThrottle {
  readonly #sources: Tallies;
  readonly #usernames: Tallies;

  /** `settings` is read at every use, so a reload applies at once. */
  constructor(
    private readonly settings: () => ThrottleSettings,
    capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#sources = new Tallies(capacity);
    this.#usernames = new Tallies(capacity);
  }

  /**
   * The hold that refuses a login from `source` as `username` now, if any
   * (the source's first). Without a username only the source is looked at.
   */
  heldBack(source: string, username: string | undefined): Hold | undefined {
    const s = this.settings();
    if (!s.enabled) return undefined;
    const now = this.now();
    const bySource = s.perSource > 0 ? this.#sources.get(source) : undefined;
    if (bySource !== undefined && bySource.heldUntil > now) return { by: "source", key: source, ms: bySource.heldUntil - now };
    const byName = s.perUsername > 0 && username !== undefined ? this.#usernames.get(username) : undefined;
    if (byName !== undefined && byName.heldUntil > now) return { by: "username", key: username!, ms: byName.heldUntil - now };
    return undefined;
  }

  /** Counts a failed check; returns the holds it started (none, or the source's and/or the username's). */
  failed(source: string, username: string | undefined): Hold[] {
    const s = this.settings();
    if (!s.enabled) return [];
    const now = this.now();
    const started: Hold[] = [];
    if (s.perSource > 0) {
      const t = this.#sources.touch(source);
      if (this.#fresh(t, s, now)) t.failures++;
      if (this.#hold(t, s.perSource, s, now)) started.push({ by: "source", key: source, ms: t.heldUntil - now });
    }
    if (s.perUsername > 0 && username !== undefined) {
      const t = this.#usernames.touch(username);
      if (this.#fresh(t, s, now)) {
        t.sources ??= new Set();
        // Bounded by perUsername: the set is emptied when it reaches it.
        if (!t.sources.has(source)) t.sources.add(source);
        t.failures = t.sources.size;
      }
      if (this.#hold(t, s.perUsername, s, now)) {
        t.sources = undefined;
        started.push({ by: "username", key: username, ms: t.heldUntil - now });
      }
    }
    return started;
  }

  /** Forgets a quiet tally's past, notes this failure; false while it is held (a check already under way then counts for nothing). */
  #fresh(t: Tally, s: ThrottleSettings, now: number): boolean {
    if (now - t.lastFailureAt > s.forgetMs) {
      t.failures = 0;
      t.sources = undefined;
      t.holds = 0;
    }
    t.lastFailureAt = now;
    return t.heldUntil <= now;
  }

  /** Starts a hold if the tally reached `limit`; true if it did. */
  #hold(t: Tally, limit: number, s: ThrottleSettings, now: number): boolean {
    if (t.heldUntil > now || t.failures < limit) return false;
    t.failures = 0;
    t.heldUntil = now + Math.min(s.maxPenaltyMs, s.penaltyMs * 2 ** Math.min(t.holds, 30));
    t.holds++;
    return true;
  }

  /** Sources and usernames held back now, for the metrics. */
  heldNow(): { source: number; username: number } {
    const now = this.now();
    return { source: this.#sources.held(now), username: this.#usernames.held(now) };
  }
}
