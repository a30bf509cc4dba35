import { REPEATED_SIGNAL_MS } from "../sdk/handler.ts";

/**
 * Turns stop requests (signals, an API call) into one graceful stop and, for
 * a later request, a forced one. A repeat within REPEATED_SIGNAL_MS is the
 * same request delivered twice — Ctrl-C reaches a process from the terminal
 * and again from a wrapper (`deno task`) or from the gateway stopping its
 * handlers — and is ignored.
 */
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
