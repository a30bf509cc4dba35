/** Handler configs for tests: the scripted test handler, run by the repo's Bun. */
import { join } from "node:path";
import { ROOT } from "./runtimes.ts";

export const BUN = join(ROOT, "node_modules/.bin/bun");
export const SCRIPTED = join(ROOT, "test/fixtures/handlers/scripted.ts");

/** A typeMap entry that starts test/fixtures/handlers/scripted.ts on `socket`. */
export function scripted(socket: string, extra: object = {}) {
  return { handlerBinary: BUN, handlerArgs: [SCRIPTED], unixDomainSocketPath: socket, ...extra };
}
