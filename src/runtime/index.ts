/**
 * Picks the runtime adapter once, at start-up. This is the only place that
 * asks which runtime is running; everything else is handed the result.
 * @module
 */
import type { Runtime } from "./types.ts";

export async function loadRuntime(): Promise<Runtime> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return (await import("./bun.ts")).bunRuntime;
  if (g.Deno !== undefined) return (await import("./deno.ts")).createDenoRuntime();
  throw new Error("bester runs on Bun or Deno; this runtime is neither (try `bun run src/main.ts` or `deno task serve`)");
}

export type * from "./types.ts";
export { formatEndpoint, ListenError } from "./types.ts";
