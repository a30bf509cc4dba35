/**
 * The open-file limit against `limits.maxConnections`. Every client holds a
 * descriptor, so a gateway whose process may open fewer files than
 * maxConnections never reaches that limit: the kernel refuses the extra
 * connections first, before a session exists to send `too_many_connections`,
 * and neither side is told why. The gateway says so when it starts and when
 * a reload changes the limit.
 * @module
 */
import { readFile } from "node:fs/promises";

/**
 * Descriptors left for everything but clients: listeners, handler links
 * (one per request in flight for a per-message handler), the account store,
 * the informer, the runtime's own.
 */
const RESERVED_DESCRIPTORS = 64;

/**
 * This process's soft limit on open files (both runtimes raise it to the
 * hard limit at start-up). Read from /proc/self/limits: undefined where there is
 * none (not Linux) or it says "unlimited".
 */
export async function openFileLimit(): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
  // "Max open files            20000                20000                files"
  const soft = /^Max open files\s+(\d+)/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/** The warning for `maxConnections` under `fileLimit`, or undefined when it fits. */
export function openFilesWarning(maxConnections: number, fileLimit: number | undefined): { message: string; fields: Record<string, unknown> } | undefined {
  if (fileLimit === undefined || maxConnections + RESERVED_DESCRIPTORS <= fileLimit) return undefined;
  return {
    message: "limits.maxConnections is above what the open-file limit allows",
    fields: {
      maxConnections,
      openFileLimit: fileLimit,
      reachable: Math.max(0, fileLimit - RESERVED_DESCRIPTORS),
      hint: "past about `reachable` connections the kernel refuses new ones without a word to the client; raise the limit (ulimit -n, systemd LimitNOFILE=) or lower limits.maxConnections",
    },
  };
}
