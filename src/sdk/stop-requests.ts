/**
 * The rule for stop requests (signals, an API call) every long-running
 * bester program follows: the first is a graceful stop, a later one forces
 * it, and a repeat within REPEATED_SIGNAL_MS is the same request delivered
 * twice. Ctrl-C reaches a process from the terminal and again from a
 * wrapper (`deno task`) or from the gateway stopping its handlers.
 * @module
 */

/** A stop request repeated within this is the same request, not a second one. */
export const REPEATED_SIGNAL_MS = 500;

/** Turns stop requests into one graceful `stop` and, for a later request, `force`. */
export function stopRequests(stop: (why: string) => void, force: (why: string) => void): (why: string) => void {
  let firstAt: number | undefined;
  return (why) => {
    if (firstAt === undefined) {
      firstAt = performance.now();
      stop(why);
    } else if (performance.now() - firstAt >= REPEATED_SIGNAL_MS) {
      force(why);
    }
  };
}
