/**
 * Gives memory glibc keeps back to the system, on Deno (2.9, Linux).
 *
 * After a load run, V8 returns its own heap within about half a minute (its
 * memory reducer), but the many small buffers Deno's native side freed stay
 * on glibc's free lists: a gateway that had 300 MiB resident under load kept
 * about 160 MiB for good, of which V8 held 10. glibc returns such memory only
 * when asked (`malloc_trim`); its environment settings (MALLOC_ARENA_MAX,
 * MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_) barely change it, and Deno
 * cannot start itself again in place to set them as Bun does for mimalloc.
 * So a Deno gateway asks, every TRIM_EVERY_MS, through FFI.
 *
 * Only where it can: Linux with glibc, and FFI allowed (`--allow-ffi`, or
 * `--allow-all` as `deno task serve` runs it); it never asks for permission.
 * @module
 */
import process from "node:process";
// node:timers, whose timers can be unref'd on Deno too.
import { setInterval } from "node:timers";

/**
 * Half a minute: after a load ends V8 frees its heap within about that long,
 * so the next trim finds it; a trim of a few hundred MiB takes milliseconds,
 * on a thread of its own, so twice a minute costs nothing under load either.
 */
export const TRIM_EVERY_MS = 30_000;

interface FfiDeno {
  permissions: { querySync(d: { name: "ffi" }): { state: "granted" | "prompt" | "denied" } };
  dlopen(
    path: string,
    symbols: { malloc_trim: { parameters: ["usize"]; result: "i32"; nonblocking: true } },
  ): { symbols: { malloc_trim(pad: number | bigint): Promise<number> }; close(): void };
}

/** Starts trimming; false when this process cannot (not glibc, no FFI permission). */
export function trimMallocPeriodically(deno: unknown): boolean {
  if (process.platform !== "linux") return false;
  const ffi = deno as FfiDeno;
  let trim: (pad: number) => Promise<number>;
  try {
    if (ffi.permissions.querySync({ name: "ffi" }).state !== "granted") return false;
    // Non-blocking: the call runs on another thread (glibc locks one arena at a time), never on the event loop.
    trim = ffi.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true } }).symbols.malloc_trim;
  } catch {
    return false; // musl, or no libc.so.6: nothing to trim with
  }
  // Never what keeps the process alive (a bench ends when its work does).
  let running = false;
  setInterval(() => {
    if (running) return;
    running = true;
    trim(0).finally(() => (running = false));
  }, TRIM_EVERY_MS).unref();
  return true;
}
