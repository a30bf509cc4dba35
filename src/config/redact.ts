/**
 * The config as `bester check` prints it.
 * @module
 */
import { formatFileMode } from "./file-mode.ts";
import type { Config } from "./types.ts";

/**
 * The config as `bester check` prints it: secrets shown as "***", and only
 * keys a config file has, so the output (secrets filled back in) loads again
 * as a config file.
 */
export function redactConfig(c: Config): unknown {
  const control = c.control.token === undefined ? c.control : { ...c.control, token: "***" };
  const peers = Object.fromEntries(
    Object.entries(c.federation.peers).map(([name, p]) => [name, p.secret === undefined ? p : { ...p, secret: "***" }]),
  );
  // `type` repeats the typeMap key; left out, the printed config loads back without warnings.
  const typeMap = Object.fromEntries(Object.entries(c.handlers.typeMap).map(([k, { type: _type, ...h }]) => [k, h]));
  const hide = <T extends { password?: string }>(r: T): T => (r.password === undefined ? r : { ...r, password: "***" });
  const redis = hide(c.database.redis);
  const { source: _source, ...rest } = c;
  const network = c.network.unix ? { ...c.network, unix: { ...c.network.unix, mode: formatFileMode(c.network.unix.mode) } } : c.network;
  return {
    ...rest,
    network,
    handlers: { ...c.handlers, typeMap },
    database: { ...c.database, redis },
    delivery: { ...c.delivery, redis: hide(c.delivery.redis) },
    control,
    federation: { ...c.federation, peers },
  };
}
