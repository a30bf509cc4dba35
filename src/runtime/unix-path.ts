import { lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { ListenError } from "./types.ts";

/**
 * Makes `path` free for a new UNIX listener. A leftover socket file from a
 * crashed run is removed, but only when nothing answers on it: a live
 * server's socket, a regular file or a directory is never touched.
 * `answers` dials the path and resolves true if a peer accepted.
 */
export async function claimUnixPath(path: string, answers: (path: string) => Promise<boolean>): Promise<void> {
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
  if (await answers(path)) {
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
