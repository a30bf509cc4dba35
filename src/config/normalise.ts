/**
 * The file's shape (schema.ts) made into the {@link Config} the gateway
 * uses: paths resolved beside the file, defaults that depend on other keys
 * filled in, switched-off parts gone.
 * @module
 */
import { dirname, resolve } from "node:path";
import {
  CONTROL_SOCKET_SUFFIX,
  DEFAULT_CONTROL_ADDRESS,
  DEFAULT_CONTROL_PORT,
  DELIVERY_DB_SUFFIX,
  INFORMER_SOCKET_SUFFIX,
  ownFilePath,
  ownSocketPath,
  SQLITE_FILE_NAME,
} from "./defaults.ts";
import type { ConfigFile } from "./schema.ts";
import { normaliseIp } from "./server-address.ts";
import type { Config, ControlConfig, HandlerConfig, PeerConfig, RedisConnection } from "./types.ts";

/** Builds the Config the gateway uses: absolute paths, derived defaults, switched-off parts gone. */
export function normalise(file: ConfigFile, source: string): Config {
  const dir = dirname(source);
  const at = (p: string) => resolve(dir, p);
  const n = file.network;
  const network: Config["network"] = { types: [...n.types] };
  if (n.unix) network.unix = { address: at(n.unix.address), mode: n.unix.mode };
  for (const kind of ["tcp4", "tcp6"] as const) {
    const b = n[kind];
    if (!b) continue;
    network[kind] = { address: b.address, port: b.port, ...(b.tls ? { tls: { certFile: at(b.tls.certFile), keyFile: at(b.tls.keyFile) } } : {}) };
  }
  if (n.ws) {
    const w = n.ws;
    network.ws = {
      address: w.address,
      port: w.port,
      path: w.path,
      ...(w.tls ? { tls: { certFile: at(w.tls.certFile), keyFile: at(w.tls.keyFile) } } : {}),
      allowedOrigins: [...new Set(w.allowedOrigins)],
    };
  }

  const availableTypes = [...new Set(file.handlers.availableTypes)];
  const typeMap: Record<string, HandlerConfig> = Object.create(null);
  for (const type of availableTypes) {
    const h = file.handlers.typeMap[type]!; // setAside reported it if missing
    typeMap[type] = {
      type,
      // A bare name ("python3") is looked up on PATH, as a shell would; anything with a slash is a path.
      ...(h.handlerBinary === undefined ? {} : { handlerBinary: h.handlerBinary.includes("/") ? at(h.handlerBinary) : h.handlerBinary }),
      ...(h.bundled === undefined ? {} : { bundled: h.bundled }),
      handlerArgs: [...h.handlerArgs],
      unixDomainSocketPath: at(h.unixDomainSocketPath),
      mode: h.mode,
      connections: h.connections,
      envelope: h.envelope,
      timeoutMs: h.timeoutMs ?? file.limits.handlerTimeoutMs,
    };
  }
  const { database: d, informer: inf, limits: l } = file;
  const clientSocket = network.unix?.address;
  return {
    source,
    network,
    handlers: { availableTypes, typeMap },
    database: {
      type: d.type,
      redis: normaliseRedis(d.redis, at),
      sqlite: { path: at(d.sqlite.path ?? SQLITE_FILE_NAME) },
      allowOpenOnNetwork: d.allowOpenOnNetwork,
    },
    admin: { info: file.admin.info },
    control: normaliseControl(file.control, clientSocket, source, at),
    informer: {
      enabled: inf.enabled,
      path: inf.path === undefined ? ownSocketPath(clientSocket, source, INFORMER_SOCKET_SUFFIX) : at(inf.path),
    },
    federation: normaliseFederation(file.federation, at),
    delivery: {
      store: file.delivery.store,
      sqlite: { path: file.delivery.sqlite.path === undefined ? ownFilePath(source, DELIVERY_DB_SUFFIX) : at(file.delivery.sqlite.path) },
      redis: normaliseRedis(file.delivery.redis ?? d.redis, at),
      inbox: { ...file.delivery.inbox },
    },
    cluster: {
      enabled: file.cluster.enabled,
      ...(file.cluster.node === undefined ? {} : { node: file.cluster.node }),
      heartbeatMs: file.cluster.heartbeatMs,
      deadAfterMs: file.cluster.deadAfterMs,
    },
    limits: {
      maxFrameBytes: l.maxFrameBytes,
      maxJsonDepth: l.maxJsonDepth,
      loginFailures: { ...l.loginFailures },
      authTimeoutMs: l.authTimeoutMs,
      maxConnections: l.maxConnections,
      handlerTimeoutMs: l.handlerTimeoutMs,
      maxPendingBytes: l.maxPendingBytes,
      sessionWindow: l.sessionWindow,
      maxHandlerHops: l.maxHandlerHops,
      shutdownGraceMs: l.shutdownGraceMs,
    },
    log: { level: file.log.level, format: file.log.format },
  };
}

/** A Redis block with its CA file resolved beside the config and only the keys given. */
function normaliseRedis(r: ConfigFile["database"]["redis"], at: (path: string) => string): RedisConnection {
  return {
    address: r.address,
    port: r.port,
    prefix: r.prefix,
    ...(r.username === undefined ? {} : { username: r.username }),
    ...(r.password === undefined ? {} : { password: r.password }),
    tls: r.tls,
    ...(r.caFile === undefined ? {} : { caFile: at(r.caFile) }),
    cluster: r.cluster,
  };
}

/** TCP when the file gives an address or a port; else a UNIX socket, the one it names or one of our own. */
function normaliseControl(
  c: ConfigFile["control"],
  clientSocket: string | undefined,
  source: string,
  at: (path: string) => string,
): ControlConfig {
  const token = c.token === undefined ? {} : { token: c.token };
  if (c.address !== undefined || c.port !== undefined) {
    return { enabled: c.enabled, address: c.address ?? DEFAULT_CONTROL_ADDRESS, port: c.port ?? DEFAULT_CONTROL_PORT, ...token };
  }
  const socket = c.socket === undefined ? ownSocketPath(clientSocket, source, CONTROL_SOCKET_SUFFIX) : at(c.socket);
  return { enabled: c.enabled, socket, ...token };
}

function normaliseFederation(f: ConfigFile["federation"], at: (path: string) => string): Config["federation"] {
  const peers: Record<string, PeerConfig> = Object.create(null);
  for (const [name, p] of Object.entries(f.peers)) {
    peers[name] = {
      name,
      ...(p.address === undefined ? {} : { address: p.address }),
      ...(p.secret === undefined ? {} : { secret: p.secret }),
      original: p.original,
      tls: p.tls,
      ...(p.caFile === undefined ? {} : { caFile: at(p.caFile) }),
    };
  }
  return {
    ...(f.name === undefined ? {} : { name: f.name }),
    peers,
    allowOriginal: [...new Set(f.allowOriginal.map(normaliseIp))],
    connectTimeoutMs: f.connectTimeoutMs,
    replyTimeoutMs: f.replyTimeoutMs,
    maxHops: f.maxHops,
  };
}
