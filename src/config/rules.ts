/**
 * The rules between keys of a finished {@link Config}: what each key allows
 * alone but cannot work, or is unsafe, together. Host names that must be
 * loopback are judged by what they resolve to, in loopback.ts.
 * @module
 */
import process from "node:process";
import { FRAME_HEADER_BYTES } from "../protocol/frame.ts";
import { MAX_UNIX_SOCKET_PATH_BYTES, MIN_CLUSTER_BEATS_PER_DEATH, MIN_PEER_SECRET_LENGTH } from "./defaults.ts";
import { isLoopbackIp } from "./loopback.ts";
import { joinPath } from "./schema.ts";
import { isIpLiteral } from "./server-address.ts";
import type { Config, ConfigIssue, RedisConnection } from "./types.ts";

/** A Redis block's rules between keys: a CA only with TLS, a user only with a password. */
function checkRedis(at: string, redis: RedisConnection, errors: ConfigIssue[]): void {
  if (redis.caFile !== undefined && !redis.tls) {
    errors.push({ path: `${at}.caFile`, message: `only used with TLS; set ${at}.tls to true, or remove it` });
  }
  if (redis.username !== undefined && redis.password === undefined && !process.env.BESTER_REDIS_PASSWORD) {
    errors.push({
      path: `${at}.username`,
      message: `needs a password: set ${at}.password, or the BESTER_REDIS_PASSWORD environment variable`,
    });
  }
}

/** Federation rules between keys: every peer is either secret-bearing or original, and we have a name to send. */
function checkFederation(f: Config["federation"], errors: ConfigIssue[]): void {
  const at = (name: string, key?: string) => {
    const base = joinPath("federation.peers", name);
    return key === undefined ? base : joinPath(base, key);
  };
  const byAddress = new Map<string, string>();
  let needsName: string | undefined;
  for (const p of Object.values(f.peers)) {
    if (p.original && p.secret !== undefined) {
      errors.push({ path: at(p.name, "secret"), message: `an original peer sends and takes no credentials; remove the secret or "original": true` });
    } else if (p.original && p.address === undefined) {
      errors.push({ path: at(p.name, "address"), message: `required for an original peer (it is only dialled; to accept one, list its IP in federation.allowOriginal)` });
    } else if (!p.original && p.secret === undefined) {
      errors.push({ path: at(p.name, "secret"), message: `required (a shared secret, the same in both servers' configs), unless the peer is an original server ("original": true)` });
    } else if (p.secret !== undefined && p.secret.length < MIN_PEER_SECRET_LENGTH) {
      errors.push({ path: at(p.name, "secret"), message: `expected at least ${MIN_PEER_SECRET_LENGTH} characters, got ${p.secret.length}` });
    }
    if (p.caFile !== undefined && !p.tls) {
      errors.push({ path: at(p.name, "caFile"), message: "only used with TLS; set tls to true, or remove it" });
    }
    if (p.tls && p.address === undefined) {
      errors.push({ path: at(p.name, "tls"), message: "needs an address: tls is how this server dials the peer" });
    }
    if (p.secret !== undefined) needsName ??= p.name;
    if (p.address !== undefined) {
      const other = byAddress.get(p.address);
      if (other !== undefined) errors.push({ path: at(p.name, "address"), message: `same address as ${at(other, "address")} (${p.address})` });
      else byAddress.set(p.address, p.name);
    }
  }
  if (needsName !== undefined && f.name === undefined) {
    errors.push({ path: "federation.name", message: `required because ${at(needsName)} has a secret: peers know this server by its name` });
  }
}

/** Off loopback for certain: an IP address outside it. A host name is judged by what it resolves to (loopback.ts). */
const offLoopback = (address: string) => isIpLiteral(address) && !isLoopbackIp(address);

/**
 * Rules on the finished config: things each key allows alone but that cannot
 * work (or are unsafe) together. Also usable on a config not read from a file.
 */
export function checkConfig(config: Config): { errors: ConfigIssue[]; warnings: string[] } {
  const errors: ConfigIssue[] = [];
  const warnings: string[] = [];
  const { limits, network, database, control } = config;

  const minPending = limits.maxFrameBytes + FRAME_HEADER_BYTES;
  if (limits.maxPendingBytes < minPending) {
    errors.push({
      path: "limits.maxPendingBytes",
      message: `expected at least limits.maxFrameBytes + ${FRAME_HEADER_BYTES} (${minPending}) so one whole frame can be queued, got ${limits.maxPendingBytes}`,
    });
  }

  const lf = limits.loginFailures;
  if (lf.penaltyMs > lf.maxPenaltyMs) {
    errors.push({
      path: "limits.loginFailures.penaltyMs",
      message: `expected at most limits.loginFailures.maxPenaltyMs (${lf.maxPenaltyMs}), got ${lf.penaltyMs}`,
    });
  }

  if (database.type === "open" && !database.allowOpenOnNetwork) {
    for (const kind of ["tcp4", "tcp6", "ws"] as const) {
      const l = network[kind];
      if (!l || !offLoopback(l.address)) continue;
      errors.push({
        path: "database.type",
        message: `"open" lets anyone in with any password, refused while network.${kind} listens on ${l.address}; use "sqlite" or "redis", or set database.allowOpenOnNetwork to true`,
      });
    }
  }

  if (database.type === "redis") checkRedis("database.redis", database.redis, errors);
  if (database.type === "redis" && database.redis.cluster) {
    errors.push({ path: "database.redis.cluster", message: "the account store takes a single Redis server; a Redis Cluster serves delivery.redis" });
  }
  if (config.delivery.store === "redis") checkRedis("delivery.redis", config.delivery.redis, errors);
  checkCluster(config, errors);

  // Two TCP listeners of one address family on one port: only one of them could bind.
  const ws = network.ws;
  if (ws && ws.port !== 0) {
    for (const kind of ["tcp4", "tcp6"] as const) {
      const l = network[kind];
      if (l && l.port === ws.port && ws.address.includes(":") === (kind === "tcp6")) {
        errors.push({ path: "network.ws.port", message: `port ${ws.port} is already used by network.${kind}` });
      }
    }
  }

  if (control.enabled && control.address !== undefined) {
    for (const kind of ["tcp4", "tcp6", "ws"] as const) {
      const l = network[kind];
      const family = kind === "ws" ? l?.address.includes(":") : kind === "tcp6";
      if (l && l.port !== 0 && l.port === control.port && control.address.includes(":") === family) {
        errors.push({ path: "control.port", message: `port ${control.port} is already used by network.${kind}` });
      }
    }
    // Refused, not warned: anyone who reaches it could reload, inject messages or stop the server.
    if (offLoopback(control.address) && control.token === undefined && !process.env.BESTER_CONTROL_TOKEN) {
      errors.push({
        path: "control.token",
        message: `required because control.address ${control.address} is not loopback; set it, or the BESTER_CONTROL_TOKEN environment variable`,
      });
    }
  }

  checkFederation(config.federation, errors);

  // Every UNIX socket the gateway binds or dials: a shared path means two parties fight over one file.
  const sockets: { path: string; file: string; program?: boolean }[] = [];
  if (network.unix) sockets.push({ path: "network.unix.address", file: network.unix.address });
  if (config.informer.enabled) sockets.push({ path: "informer.path", file: config.informer.path });
  if (control.enabled && control.socket !== undefined) sockets.push({ path: "control.socket", file: control.socket });
  for (const h of Object.values(config.handlers.typeMap)) {
    const path = joinPath(joinPath("handlers.typeMap", h.type), "unixDomainSocketPath");
    sockets.push({ path, file: h.unixDomainSocketPath, program: h.handlerBinary !== undefined || h.bundled !== undefined });
    if (h.handlerBinary !== undefined && h.bundled !== undefined) {
      errors.push({ path: joinPath(joinPath("handlers.typeMap", h.type), "bundled"), message: `give either handlerBinary or bundled, not both` });
    }
    if (h.handlerBinary === undefined && h.bundled === undefined && h.handlerArgs.length > 0) {
      warnings.push(`${joinPath(joinPath("handlers.typeMap", h.type), "handlerArgs")}: ignored because no handlerBinary is given`);
    }
  }
  sockets.forEach((s, i) => {
    const bytes = new TextEncoder().encode(s.file).length;
    if (bytes > MAX_UNIX_SOCKET_PATH_BYTES) {
      errors.push({ path: s.path, message: `socket path is ${bytes} bytes long, the OS allows at most ${MAX_UNIX_SOCKET_PATH_BYTES}: ${s.file}` });
    }
    // Two handler types may share one handler's socket, as long as at most one of them starts the program.
    const clash = sockets.slice(0, i).find((o) =>
      o.file === s.file && (o.program === undefined || s.program === undefined || (o.program && s.program)));
    if (clash) errors.push({ path: s.path, message: `same socket as ${clash.path} (${s.file})` });
  });
  return { errors, warnings };
}

/** A cluster's nodes share the inbox and presence in one Redis: the delivery store's. */
function checkCluster(config: Config, errors: ConfigIssue[]): void {
  const c = config.cluster;
  if (!c.enabled) return;
  if (config.delivery.store !== "redis") {
    errors.push({
      path: "cluster.enabled",
      message: `needs delivery.store "redis" (the nodes share inboxes and presence in it), got ${JSON.stringify(config.delivery.store)}`,
    });
  }
  const least = c.heartbeatMs * MIN_CLUSTER_BEATS_PER_DEATH;
  if (c.deadAfterMs < least) {
    errors.push({
      path: "cluster.deadAfterMs",
      message: `expected at least ${MIN_CLUSTER_BEATS_PER_DEATH} × cluster.heartbeatMs (${least}) so one late heartbeat is no death, got ${c.deadAfterMs}`,
    });
  }
}
