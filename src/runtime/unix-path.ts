import { chmod, lstat, mkdir, mkdtemp, rename, rmdir, unlink } from "node:fs/promises";
import { createConnection } from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import { ListenError } from "./types.ts";

/** sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, one of them the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = ["darwin", "freebsd", "openbsd", "netbsd"].includes(process.platform) ? 103 : 107;

/** How long the stale-socket probe waits for a live listener to accept. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * True if a process accepts connections on the socket at `path`. A live
 * listener accepts at once; one silent for PROBE_TIMEOUT_MS is a wedged
 * process, and counts as live: its socket is left alone.
 */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    const done = (live: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    probe.once("connect", () => done(true));
    probe.once("error", () => done(false));
  });
}

/**
 * Makes `path` free for a new UNIX listener. A leftover socket file from a
 * crashed run is removed, but only when nothing answers on it: a live
 * server's socket, a regular file or a directory is never touched.
 */
export async function claimUnixPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let kind: "socket" | "other" | "none" = "none";
  try {
    kind = (await lstat(path)).isSocket() ? "socket" : "other";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (kind === "none") return;
  if (kind === "other") {
    throw new ListenError("not_socket", `${path} exists and is not a socket; refusing to replace it`);
  }
  if (await socketAnswers(path)) {
    throw new ListenError("in_use", `${path} is in use by another running server`);
  }
  await unlink(path);
}

/** Removes a socket file this process created; a missing file is fine. */
export async function releaseUnixPath(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSocket()) await unlink(path);
  } catch {
    // already gone
  }
}

/** Owner read/write only: who may connect to a private socket is decided by the file's owner. */
const PRIVATE_SOCKET_MODE = 0o600;

/** A socket bound by {@link bindPrivateSocket}: what `bind` returned, and how to remove its file. */
export interface PrivateSocket<T> {
  server: T;
  /** Removes the socket file, unless another process has put a socket of its own there since. */
  remove(): Promise<void>;
}

/**
 * Binds a UNIX socket at `path` (made free by the caller) with `mode`,
 * whatever the umask, with no moment at which anyone the mode excludes could
 * connect: bind() creates the file 0777 minus the umask and the runtimes bind
 * and listen in one call, so the socket is bound inside a fresh private
 * directory beside `path` (mkdtemp makes it 0700), given its mode there, and
 * only then renamed into place. When the staging path would be too long for
 * a socket it is bound in place and given its mode at once (`onInPlace`
 * hears it). On failure, `release` undoes the bind before the error goes on.
 */
export async function bindWithMode<T>(
  path: string,
  mode: number,
  bind: (at: string) => T | Promise<T>,
  release: (bound: T) => void | Promise<void>,
  onInPlace?: () => void,
): Promise<T> {
  const dir = await mkdtemp(join(dirname(path), ".bs-"));
  const staging = join(dir, "s");
  const inPlace = new TextEncoder().encode(staging).length > MAX_SOCKET_PATH_BYTES;
  if (inPlace) onInPlace?.();
  let bound: { value: T } | undefined;
  try {
    bound = { value: await bind(inPlace ? path : staging) };
    await chmod(inPlace ? path : staging, mode);
    if (!inPlace) await rename(staging, path);
    return bound.value;
  } catch (err) {
    if (bound) await release(bound.value);
    throw err;
  } finally {
    await rmdir(dir).catch(() => {});
  }
}

/**
 * Binds a UNIX socket at `path` that only this user can open (mode 0600),
 * see {@link bindWithMode}. A stale file from a crash is replaced, a live
 * socket refused (see claimUnixPath).
 */
export async function bindPrivateSocket<T>(
  path: string,
  bind: (at: string) => Promise<T & { close(): Promise<void> }>,
  onInPlace?: () => void,
): Promise<PrivateSocket<T & { close(): Promise<void> }>> {
  await claimUnixPath(path);
  const server = await bindWithMode(path, PRIVATE_SOCKET_MODE, bind, (s) => s.close(), onInPlace);
  const inode = (await lstat(path)).ino;
  return {
    server,
    async remove() {
      try {
        const now = await lstat(path);
        if (now.isSocket() && now.ino === inode) await unlink(path);
      } catch {
        // already gone
      }
    },
  };
}
