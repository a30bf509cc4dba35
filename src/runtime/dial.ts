import { type Endpoint, formatEndpoint } from "./types.ts";

/**
 * Waits for a dial, failing after `timeoutMs` with a message naming the
 * endpoint. A dial that completes after its deadline is handed to `discard`
 * so its socket does not leak. Without `timeoutMs` the caller keeps the
 * deadline itself (a per-message handler request): no timer, no race.
 */
export async function dialWithTimeout<T>(
  to: Endpoint,
  dial: Promise<T>,
  timeoutMs: number | undefined,
  discard: (late: T) => void,
): Promise<T> {
  if (timeoutMs === undefined) {
    try {
      return await dial;
    } catch (err) {
      throw cannotConnect(to, err);
    }
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`connect to ${formatEndpoint(to)} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([dial, timeout]);
  } catch (err) {
    dial.then(discard, () => {});
    if (timedOut) throw err;
    throw cannotConnect(to, err);
  } finally {
    clearTimeout(timer);
  }
}

function cannotConnect(to: Endpoint, err: unknown): Error {
  return new Error(`cannot connect to ${formatEndpoint(to)}: ${(err as Error).message ?? err}`);
}
