/**
 * Addresses of other Bester servers as `sendServers` names them (PROTOCOL.md
 * §4): `host:port`, or `[ipv6]:port` (Extension). Parsed the same way for the
 * config's peer list and for a handler's targets, so the two can be matched.
 * @module
 */

export interface ServerAddress {
  /** Host name or IP literal, IPv6 without brackets. */
  host: string;
  port: number;
  /** IPv6 literal: dialled over tcp6. */
  ipv6: boolean;
  /**
   * The canonical text: lower-case host, IPv6 in its shortest form, so
   * `[0:0::1]:2221` and `[::1]:2221` name the same server.
   */
  key: string;
}

/** `host:port` or `[ipv6]:port`, port 1-65535; undefined for anything else. */
export function parseServerAddress(text: unknown): ServerAddress | undefined {
  if (typeof text !== "string") return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s/]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) {
    let host: string;
    try {
      // The URL parser canonicalises IPv6 literals (and refuses malformed ones).
      host = new URL(`http://[${m[1]}]/`).hostname.slice(1, -1);
    } catch {
      return undefined;
    }
    return { host, port, ipv6: true, key: `[${host}]:${port}` };
  }
  const host = m[2]!.toLowerCase();
  return { host, port, ipv6: false, key: `${host}:${port}` };
}

/**
 * An IP address as it should be compared with an allow-list: IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`, what a dual-stack socket reports) becomes plain IPv4,
 * IPv6 is canonicalised.
 */
export function normaliseIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (address.includes(":")) {
    try {
      return new URL(`http://[${address}]/`).hostname.slice(1, -1);
    } catch {
      return address.toLowerCase();
    }
  }
  return address;
}

/** True for an IPv4 or IPv6 literal (not a host name). */
export function isIpLiteral(text: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) return text.split(".").every((n) => Number(n) <= 255);
  if (!text.includes(":")) return false;
  try {
    new URL(`http://[${text}]/`);
    return true;
  } catch {
    return false;
  }
}
