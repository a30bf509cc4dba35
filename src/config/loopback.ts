/**
 * Whether an address the gateway binds is loopback, judged by the addresses
 * it stands for, never by how it is spelt: `127.attacker.example` is a host
 * name like any other, and `127.1` or `localhost` are loopback only because
 * they resolve there. Used for the rules that allow something unsafe only
 * on loopback (the `open` account store, a control API without a token),
 * in `bester check`, at start and on reload.
 * @module
 */
import { lookup } from "node:dns/promises";
import type { ConfigIssue } from "./types.ts";
import type { Config } from "./types.ts";
import { isIpLiteral, normaliseIp } from "./server-address.ts";

/** True for an IP address in 127.0.0.0/8 or ::1, IPv4-mapped forms included. A host name is never loopback here. */
export function isLoopbackIp(address: string): boolean {
  if (!isIpLiteral(address)) return false;
  const ip = normaliseIp(address);
  if (!ip.includes(":")) return ip.startsWith("127.");
  if (ip === "::1") return true;
  // IPv4-mapped, as the URL parser writes it: ::ffff:7f00:1 is ::ffff:127.0.0.1.
  return /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(ip);
}

/** Every address `host` stands for (family 4, 6, or 0 for both), as the listener's bind would resolve it; an IP address stands for itself. */
export async function resolveAddresses(host: string, family: 0 | 4 | 6): Promise<{ addresses: string[] } | { problem: string }> {
  if (isIpLiteral(host)) return { addresses: [host] };
  try {
    const found = await lookup(host, { all: true, family });
    return { addresses: found.map((a) => a.address) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { problem: typeof code === "string" ? code : (err as Error).message };
  }
}

/** Why `host` cannot be trusted to be loopback (a clause for a message), or undefined when every address it stands for is. */
export async function notLoopback(host: string, family: 0 | 4 | 6): Promise<string | undefined> {
  if (isIpLiteral(host)) return isLoopbackIp(host) ? undefined : `${host} is not loopback`;
  const resolved = await resolveAddresses(host, family);
  if ("problem" in resolved) return `${host} does not resolve (${resolved.problem}), so it cannot be shown to be loopback`;
  const outside = resolved.addresses.filter((a) => !isLoopbackIp(a));
  if (outside.length === 0 && resolved.addresses.length > 0) return undefined;
  return `${host} resolves to ${resolved.addresses.join(", ")}, not loopback only`;
}

/**
 * The loopback rules of checkConfig for host names, which need the resolver:
 * the `open` store while a TCP or WebSocket listener's name is not loopback, and a control
 * API without a token on such a name. IP addresses are judged by checkConfig.
 */
export async function checkResolvedAddresses(config: Config): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  const { network, database, control } = config;
  if (database.type === "open" && !database.allowOpenOnNetwork) {
    for (const kind of ["tcp4", "tcp6", "ws"] as const) {
      const l = network[kind];
      if (!l || isIpLiteral(l.address)) continue;
      const why = await notLoopback(l.address, kind === "tcp4" ? 4 : kind === "tcp6" ? 6 : 0);
      if (why === undefined) continue;
      issues.push({
        path: "database.type",
        message: `"open" lets anyone in with any password, refused while network.${kind} listens on a name that may not be loopback: ${why}; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true`,
      });
    }
  }
  if (control.enabled && control.address !== undefined && control.token === undefined && !process.env.BESTER_CONTROL_TOKEN && !isIpLiteral(control.address)) {
    const why = await notLoopback(control.address, 0);
    if (why !== undefined) {
      issues.push({
        path: "control.token",
        message: `required because control.address may not be loopback: ${why}; set it, or the BESTER_CONTROL_TOKEN environment variable`,
      });
    }
  }
  return issues;
}
