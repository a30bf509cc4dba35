import type { Runtime } from "../runtime/types.ts";

export const CLIENT_HELP = `Usage: bester client ...   (being written)`;
export const SEND_HELP = `Usage: bester send ...   (being written)`;

export async function clientCommand(_runtime: Runtime, _argv: string[]): Promise<number> {
  console.error("bester client: not available yet");
  return 1;
}

export async function sendCommand(_runtime: Runtime, _argv: string[]): Promise<number> {
  console.error("bester send: not available yet");
  return 1;
}
