/**
 * Reads a config file and turns it into a {@link Config}: JSON, then the
 * schema, then the rules that span several keys, with every issue collected
 * and named by its path, so one run shows everything that needs fixing.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import * as v from "valibot";
import {
  CONTROL_SOCKET_SUFFIX,
  DELIVERY_DB_SUFFIX,
  DEFAULT_CONTROL_ADDRESS,
  DEFAULT_CONTROL_PORT,
  FRAME_HEADER_BYTES,
  INFORMER_SOCKET_SUFFIX,
  MAX_UNIX_SOCKET_PATH_BYTES,
  MIN_PEER_SECRET_LENGTH,
  ownFilePath,
  ownSocketPath,
  SQLITE_FILE_NAME,
} from "./defaults.ts";
import { formatFileMode } from "./file-mode.ts";
import { findJsonSyntaxError } from "./json-error.ts";
import {
  type Config,
  CONFIG_SECTIONS,
  type ControlConfig,
  type ConfigFile,
  configSchema,
  findUnknownKeys,
  type HandlerConfig,
  joinPath,
  LISTENER_KINDS,
  type ListenerKind,
  type PeerConfig,
  type RedisConnection,
} from "./schema.ts";
import { checkResolvedAddresses, isLoopbackIp } from "./loopback.ts";
import { isIpLiteral, normaliseIp } from "./server-address.ts";

export interface ConfigIssue {
  path: string;
  message: string;
}
export type LoadResult =
  | { ok: true; config: Config; warnings: string[] }
  | { ok: false; errors: ConfigIssue[]; warnings: string[] };

/** Answered by the server itself (PROTOCOL.md §3); a handler of that name never sees a message. */
const BUILTIN_TYPES = ["dummy", "builtin"];
/** valibot drops these keys from records (prototype pollution guard), so a handler so named would vanish silently. */
const RESERVED_NAMES = ["__proto__", "prototype", "constructor"];

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const q = (s: string) => JSON.stringify(s);
const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);
const failed = (errors: ConfigIssue[], warnings: string[] = []): LoadResult => ({ ok: false, errors, warnings });

export function formatIssue(i: ConfigIssue): string {
  return i.path === "" ? i.message : `${i.path}: ${i.message}`;
}

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

export async function loadConfigFile(path: string): Promise<LoadResult> {
  const source = resolve(path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(source);
  } catch (e) {
    return failed([{ path: "", message: `cannot read ${source}: ${readFailure(e)}` }]);
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    return failed([{ path: "", message: `cannot read ${source}: not valid UTF-8` }]);
  }
  const parsed = parseConfigText(text, source);
  if (!parsed.ok) return parsed;
  // Host names are judged by the addresses they resolve to, which needs the resolver: after everything else.
  const unsafe = await checkResolvedAddresses(parsed.config);
  return unsafe.length > 0 ? failed(unsafe, parsed.warnings) : parsed;
}

function readFailure(e: unknown): string {
  const code = (e as { code?: unknown }).code;
  if (code === "ENOENT") return "no such file";
  if (code === "EACCES") return "permission denied";
  if (code === "EISDIR") return "it is a directory";
  return e instanceof Error ? e.message : String(e);
}

/** `sourcePath` names the file in messages and anchors its relative paths. */
export function parseConfigText(text: string, sourcePath: string): LoadResult {
  const source = resolve(sourcePath);
  const json = text.replace(/^\uFEFF/, ""); // editors on Windows like to add a BOM
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    const at = findJsonSyntaxError(json);
    const where = at ? `line ${at.line}, column ${at.column}: ${at.reason}` : (e as Error).message;
    return failed([{ path: "", message: `${source} is not valid JSON: ${where}` }]);
  }
  return validateConfig(raw, source);
}

/** Validates an already parsed file; relative paths in it resolve against the directory of `sourcePath`. */
export function validateConfig(raw: unknown, sourcePath: string): LoadResult {
  const source = resolve(sourcePath);
  const errors: ConfigIssue[] = [];
  const warnings: string[] = [];
  const input = setAside(raw, errors, warnings);
  for (const [at, key] of findUnknownKeys(configSchema, input)) {
    warnings.push(`unknown key ${q(key)} at ${at || "the top level"} (ignored)`);
  }
  const parsed = v.safeParse(configSchema, input, { abortEarly: false });
  if (!parsed.success) errors.unshift(...parsed.issues.map(toIssue));
  if (!parsed.success || errors.length > 0) return failed(inSchemaOrder(errors), warnings);
  const config = normalise(parsed.output, source);
  const checked = checkConfig(config);
  warnings.push(...checked.warnings);
  if (checked.errors.length > 0) return failed(checked.errors, warnings);
  return { ok: true, config, warnings };
}

function toIssue(issue: v.BaseIssue<unknown>): ConfigIssue {
  const path = (issue.path ?? []).reduce((p, item) => joinPath(p, item.key as string | number), "");
  return { path, message: issue.message };
}

/** Groups issues by top-level section, in the schema's order, keeping their order within a section. */
function inSchemaOrder(issues: ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue) => CONFIG_SECTIONS.indexOf(i.path.split(/[.[]/)[0]!);
  return issues.map((i, n) => ({ i, n })).sort((a, b) => rank(a.i) - rank(b.i) || a.n - b.n).map((x) => x.i);
}

/**
 * The rules between keys that the schema cannot see, checked on the raw file
 * so they are reported together with the schema's issues. Returns the input
 * without the parts the file has switched off (listener blocks not in
 * network.types, handlers not in availableTypes): those are ignored, not
 * validated, as the original daemon ignored them.
 */
function setAside(raw: unknown, errors: ConfigIssue[], warnings: string[]): unknown {
  if (!isPlainObject(raw)) return raw;
  const input = { ...raw };
  const network = raw.network;
  if (isPlainObject(network) && Array.isArray(network.types)) {
    const kept = { ...network };
    const named = new Set<string>();
    network.types.forEach((kind: unknown, i) => {
      if (!(LISTENER_KINDS as readonly unknown[]).includes(kind)) return; // the schema reports it
      const k = kind as ListenerKind;
      if (named.has(k)) errors.push({ path: joinPath("network.types", i), message: `${q(k)} is listed twice` });
      // Every key of the WebSocket listener has a default: "ws" in the list is enough.
      else if (k === "ws" && !Object.hasOwn(network, k)) kept[k] = {};
      else if (!Object.hasOwn(network, k)) {
        errors.push({ path: `network.${k}`, message: `required because network.types includes ${q(k)}` });
      }
      named.add(k);
    });
    for (const kind of LISTENER_KINDS) {
      if (named.has(kind) || !Object.hasOwn(network, kind)) continue;
      warnings.push(`network.${kind}: ignored because network.types does not include ${q(kind)}`);
      delete kept[kind];
    }
    input.network = kept;
  }
  const control = raw.control;
  if (isPlainObject(control) && control.socket !== undefined && (control.address !== undefined || control.port !== undefined)) {
    errors.push({ path: "control.socket", message: "give either a socket or an address and port, not both" });
  }
  const handlers = raw.handlers;
  const typeMap = isPlainObject(handlers) ? (handlers.typeMap ?? {}) : undefined;
  if (isPlainObject(handlers) && Array.isArray(handlers.availableTypes) && isPlainObject(typeMap)) {
    const kept: Record<string, unknown> = Object.create(null);
    const named = new Set<string>();
    handlers.availableTypes.forEach((type: unknown, i) => {
      if (typeof type !== "string" || type === "") return; // the schema reports it
      const at = joinPath("handlers.availableTypes", i);
      if (named.has(type)) warnings.push(`${at}: ${q(type)} is listed twice (ignored)`);
      else if (RESERVED_NAMES.includes(type)) errors.push({ path: at, message: `${q(type)} cannot be a type name` });
      else if (!Object.hasOwn(typeMap, type)) {
        errors.push({
          path: joinPath("handlers.typeMap", type),
          message: `required because handlers.availableTypes includes ${q(type)}`,
        });
      } else if (BUILTIN_TYPES.includes(type)) {
        warnings.push(`${at}: ${q(type)} is answered by the server itself, so this handler is never used`);
      }
      named.add(type);
    });
    for (const [type, entry] of Object.entries(typeMap)) {
      if (named.has(type)) kept[type] = entry;
      else warnings.push(`${joinPath("handlers.typeMap", type)}: ignored because handlers.availableTypes does not include ${q(type)}`);
    }
    input.handlers = { ...handlers, typeMap: kept };
  }
  return input;
}

/** Builds the Config the gateway uses: absolute paths, derived defaults, switched-off parts gone. */
function normalise(file: ConfigFile, source: string): Config {
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
