import type { Runtime } from "../runtime/types.ts";

export const HANDLER_HELP = `Usage: bester handler NAME SOCKET [INFORMER]   (being written)`;

export async function handlerCommand(_runtime: Runtime, _argv: string[]): Promise<number> {
  console.error("bester handler: not available yet");
  return 1;
}
