/**
 * A Lua script as the Redis stores send it: by its SHA1 (EVALSHA), loaded
 * again from its text when a server says it does not know it.
 * @module
 */
import { createHash } from "node:crypto";

export interface Script {
  name: string;
  text: string;
  sha: string;
}

export function script(name: string, text: string): Script {
  return { name, text, sha: createHash("sha1").update(text).digest("hex") };
}
