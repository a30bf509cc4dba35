/**
 * Reading a file that a config key or a command-line flag names (a CA, a
 * certificate, a key): the error says which key or flag, and which path.
 * @module
 */
import { readFileSync } from "node:fs";

export function readNamedFile(name: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${name}: cannot read ${path}: ${(err as Error).message}`);
  }
}
