import type { Runtime } from "../runtime/types.ts";

export const PASSWD_HELP = `Usage: bester passwd add|remove|list ...   (being written)`;

export async function passwdCommand(_runtime: Runtime, _argv: string[]): Promise<number> {
  console.error("bester passwd: not available yet");
  return 1;
}
