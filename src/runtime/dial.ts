import { type Endpoint, formatEndpoint } from "./types.ts";

/**
 * Waits for a dial, failing after `timeoutMs` with a message naming the
 * endpoint. A dial that completes after its deadline is handed to `discard`
 * so its socket does not leak.
 */
export async function dialWithTimeout<T>(
  to: Endpoint,
  dial: Promise<T>,
  timeoutMs: number,
  discard: (late: T) => void,
): Promise<T> {
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
    throw new Error(`cannot connect to ${formatEndpoint(to)}: ${(err as Error).message ?? err}`);
  } finally {
    clearTimeout(timer);
  }
}
