/**
 * A UNIX socket with the mode asked for, whatever the process umask.
 *
 * bind() creates the socket file with mode 0777 minus the umask, and
 * connecting needs write permission on it: under `umask 000` anyone on the
 * host could connect. A chmod after the bind leaves a moment in which they
 * still can, and the runtimes bind and listen in one call. So the socket is
 * bound inside a fresh directory only this user may enter (mkdtemp makes it
 * 0700), given its mode there, and only then renamed to its path: nobody
 * else can reach it before its mode is set.
 * @module
 */
import { chmod, mkdtemp, rename, rmdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import process from "node:process";

/** sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, one of them the terminating NUL. */
const MAX_PATH_BYTES = ["darwin", "freebsd", "openbsd", "netbsd"].includes(process.platform) ? 103 : 107;

/**
 * Binds with `bind` at a private staging path, sets `mode`, and renames the
 * socket to `path` (which the caller has made free). If the staging path
 * would be too long for a socket, binds at `path` itself and sets the mode
 * at once after. On failure, `release` undoes the bind before the error is
 * thrown.
 */
export async function bindWithMode<T>(
  path: string,
  mode: number,
  bind: (at: string) => T | Promise<T>,
  release: (bound: T) => void | Promise<void>,
): Promise<T> {
  const dir = await mkdtemp(join(dirname(path), ".s"));
  const staging = join(dir, "s");
  const inPlace = new TextEncoder().encode(staging).length > MAX_PATH_BYTES;
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
