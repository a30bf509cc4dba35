/**
 * The way a login reaches the account store: refused at once while its
 * source or its username is held back (throttle.ts), else queued for its
 * turn at a password check (check-queue.ts). A failed check is counted, and
 * a hold it starts on the source also refuses the checks that source still
 * has waiting, so a flood from one address costs a few checks, not one each.
 * @module
 */
import { normaliseIp } from "../config/server-address.ts";
import type { Endpoint } from "../runtime/types.ts";
import { CheckQueue } from "./check-queue.ts";
import { checkUsername, type VerifyResult } from "./store.ts";
import { type Hold, LoginThrottle, type ThrottleSettings } from "./throttle.ts";

export type { Hold, HoldKind, ThrottleSettings } from "./throttle.ts";

export type GateOutcome = { checked: VerifyResult } | { held: Hold };

/** Every UNIX-socket client is one source: the peer's address says nothing about who it is. */
export const UNIX_SOURCE = "unix";

/** The source a login is counted under: the peer's IP address, or {@link UNIX_SOURCE}. */
export function loginSource(remote: Endpoint): string {
  return remote.kind === "unix" ? UNIX_SOURCE : normaliseIp(remote.host);
}

export interface LoginGateOptions {
  settings(): ThrottleSettings;
  /** Password checks run at once. */
  slots(): number;
  /** Sources and usernames remembered, each. */
  capacity: number;
  /** A hold has begun (to log and count it). */
  onHold(hold: Hold): void;
}

export class LoginGate {
  readonly queue: CheckQueue;
  readonly throttle: LoginThrottle;

  constructor(private readonly options: LoginGateOptions) {
    this.queue = new CheckQueue(options.slots);
    this.throttle = new LoginThrottle(options.settings, options.capacity);
  }

  /** Checks a login with `verify` when its turn comes, unless its source or username is held back. */
  login(source: string, rawUsername: string, verify: () => Promise<VerifyResult>): Promise<GateOutcome> {
    // A name the stores refuse anyway is not tallied: it would only be a long key chosen by the client.
    const checked = checkUsername(rawUsername);
    const username = checked.ok ? checked.username : undefined;
    const held = this.throttle.heldBack(source, username);
    if (held) return Promise.resolve({ held });
    return this.queue.run<GateOutcome>(
      source,
      async () => {
        // Held back while it waited (its username, by failures from elsewhere).
        const since = this.throttle.heldBack(source, username);
        if (since) return { held: since };
        const result = await verify();
        if (!result.ok && result.reason !== "unavailable") this.#failed(source, username);
        return { checked: result };
      },
      () => ({ held: this.throttle.heldBack(source, username) ?? { by: "source", key: source, ms: 0 } }),
    );
  }

  #failed(source: string, username: string | undefined): void {
    for (const hold of this.throttle.failed(source, username)) {
      this.options.onHold(hold);
      if (hold.by === "source") this.queue.cancel(source);
    }
  }
}
