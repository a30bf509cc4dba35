/**
 * The config file: the original server.conf shape (PROTOCOL.md §8) and, beside
 * its keys, this project's additions (marked "extension"). Every object is
 * loose, so files written for the original daemon load with extra keys; the
 * loader turns unknown keys into warnings by walking this schema.
 *
 * Paths stay as written here; `load.ts` resolves them and builds {@link Config}.
 *
 * @module
 */
import * as v from "valibot";
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_DELIVERY_STORE,
  DEFAULT_INBOX_MAX_AGE_SECONDS,
  DEFAULT_CLUSTER_HEARTBEAT_MS,
  DEFAULT_CLUSTER_DEAD_AFTER_MS,
  MIN_CLUSTER_HEARTBEAT_MS,
  DEFAULT_INBOX_MAX_BYTES,
  DEFAULT_INBOX_MAX_MESSAGES,
  DEFAULT_HANDLER_CONNECTIONS,
  DEFAULT_HANDLER_TIMEOUT_MS,
  DEFAULT_LOG_FORMAT,
  DEFAULT_LOG_LEVEL,
  DEFAULT_LOGIN_FAILURES_PER_SOURCE,
  DEFAULT_LOGIN_FAILURES_PER_USERNAME,
  DEFAULT_LOGIN_FORGET_MS,
  DEFAULT_LOGIN_MAX_PENALTY_MS,
  DEFAULT_LOGIN_PENALTY_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_HANDLER_HOPS,
  DEFAULT_MAX_JSON_DEPTH,
  DEFAULT_MAX_PENDING_BYTES,
  DEFAULT_MAX_SERVER_HOPS,
  DEFAULT_PEER_CONNECT_TIMEOUT_MS,
  DEFAULT_PEER_REPLY_TIMEOUT_MS,
  DEFAULT_REDIS_ADDRESS,
  DEFAULT_REDIS_PORT,
  DEFAULT_SESSION_WINDOW,
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_TCP4_PORT,
  DEFAULT_TCP6_PORT,
  DEFAULT_UNIX_SOCKET_MODE,
  DEFAULT_WS_ADDRESS,
  DEFAULT_WS_PATH,
  DEFAULT_WS_PORT,
  MAX_HANDLER_CONNECTIONS,
  MAX_HANDLER_HOPS,
  MAX_MAX_JSON_DEPTH,
  MAX_SERVER_HOPS,
  MAX_SESSION_WINDOW,
  MAX_TIMER_MS,
  MIN_MAX_FRAME_BYTES,
  MIN_MAX_JSON_DEPTH,
} from "./defaults.ts";
import { formatFileMode, parseFileMode } from "./file-mode.ts";
import { isIpLiteral, parseServerAddress } from "./server-address.ts";
import { BUNDLED_HANDLERS, DATABASE_TYPES, DELIVERY_STORES, HANDLER_MODES, LISTENER_KINDS, LOG_FORMATS, LOG_LEVELS } from "./types.ts";

// --- building blocks, each with the wording its error uses --------------------

/** The received value as messages quote it: JSON when short, else its kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  const json = JSON.stringify(value);
  if (json.length <= 40) return json;
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  return `${json.slice(0, 36)}..."`;
}

const isPlainObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

const expected = (what: string) => (issue: v.BaseIssue<unknown>) =>
  `expected ${what}, got ${describeValue(issue.input)}`;

/**
 * A loose object (extra keys pass) that refuses arrays, which valibot's object
 * schemas would take, and whose missing required keys say so rather than
 * blaming the object.
 */
function obj<const E extends v.ObjectEntries>(entries: E) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, expected("an object")),
    v.looseObject(entries, (issue) => (issue.path?.[0]?.origin === "key" ? "required but missing" : expected("an object")(issue))),
  );
}

/** Validates and converts in one step, so the message can name the whole expectation. */
function convert<T>(what: string, parse: (input: unknown) => T | undefined) {
  return v.pipe(
    v.unknown(),
    v.rawTransform<unknown, T>(({ dataset, addIssue, NEVER }) => {
      const out = parse(dataset.value);
      if (out !== undefined) return out;
      addIssue({ message: `expected ${what}, got ${describeValue(dataset.value)}` });
      return NEVER;
    }),
  );
}

const int = (min: number, max = Infinity) =>
  convert(max === Infinity ? `an integer >= ${min}` : `an integer ${min}-${max}`, (x) =>
    typeof x === "number" && Number.isInteger(x) && x >= min && x <= max ? x : undefined);

/** The original wrote ports as strings ("2220"); numbers are accepted too. 0 asks the OS for any free port. */
const port = convert("a port 0-65535", (x) => {
  const n = typeof x === "string" && /^\d{1,5}$/.test(x) ? Number(x) : x;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined;
});

const fileMode = convert('an octal mode such as "0660" that lets the owner read and write', parseFileMode);

const text = convert("a non-empty string", (x) => (typeof x === "string" && x !== "" ? x : undefined));
const str = v.string(expected("a string"));
const bool = v.boolean(expected("true or false"));
const list = <T extends v.GenericSchema>(item: T) => v.array(item, expected("an array"));

const pick = <const T extends readonly [string, ...string[]]>(options: T) =>
  v.picklist(options, expected(`one of ${options.map((o) => JSON.stringify(o)).join(", ")}`));

/** An IPv6 literal here would bind the wrong family; host names are left to the resolver. */
const ipv4Host = convert("an IPv4 address or host name", (x) =>
  typeof x === "string" && x !== "" && !x.includes(":") ? x : undefined);
const ipv6Host = convert("an IPv6 address or host name", (x) =>
  typeof x === "string" && x !== "" && !/^\d+\.\d+\.\d+\.\d+$/.test(x) ? x : undefined);

// --- the file ------------------------------------------------------------------

export const handlerSchema = obj({
  handlerBinary: v.optional(text),
  unixDomainSocketPath: text,
  // extensions
  bundled: v.optional(pick(BUNDLED_HANDLERS)),
  handlerArgs: v.optional(list(str), () => []),
  mode: v.optional(pick(HANDLER_MODES), "per-message"),
  connections: v.optional(int(1, MAX_HANDLER_CONNECTIONS), DEFAULT_HANDLER_CONNECTIONS),
  envelope: v.optional(bool, false),
  timeoutMs: v.optional(int(1, MAX_TIMER_MS)),
});

// extension: a TCP listener that speaks TLS
const tlsListenerSchema = obj({ certFile: text, keyFile: text });

/** An absolute URL path, as a WebSocket URL carries it: no query, fragment or white space. */
const urlPath = convert('a path starting with "/" (no query, fragment or white space)', (x) =>
  typeof x === "string" && /^\/[^?#\s]*$/.test(x) ? x : undefined);

/** A browser origin as the Origin header carries it: scheme, host and port, nothing more. */
const origin = convert('an origin like "https://chat.example.com" (scheme, host and optional port; no path)', (x) => {
  if (typeof x !== "string") return undefined;
  try {
    const url = new URL(x);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === x ? x : undefined;
  } catch {
    return undefined;
  }
});

// extension (PROTOCOL.md §10)
const wsListenerSchema = obj({
  address: v.optional(text, DEFAULT_WS_ADDRESS),
  port: v.optional(port, DEFAULT_WS_PORT),
  path: v.optional(urlPath, DEFAULT_WS_PATH),
  tls: v.optional(tlsListenerSchema),
  allowedOrigins: v.optional(list(origin), () => []),
});

const networkSchema = obj({
  types: v.pipe(
    list(pick(LISTENER_KINDS)),
    v.minLength(1, `expected at least one of "unix", "tcp4", "tcp6", "ws", got []`),
  ),
  unix: v.optional(obj({ address: text, mode: v.optional(fileMode, formatFileMode(DEFAULT_UNIX_SOCKET_MODE)) })),
  tcp4: v.optional(obj({ address: ipv4Host, port: v.optional(port, DEFAULT_TCP4_PORT), tls: v.optional(tlsListenerSchema) })),
  tcp6: v.optional(obj({ address: ipv6Host, port: v.optional(port, DEFAULT_TCP6_PORT), tls: v.optional(tlsListenerSchema) })),
  ws: v.optional(wsListenerSchema),
});

const handlersSchema = obj({
  availableTypes: v.optional(list(text), () => []),
  typeMap: v.optional(v.record(v.string(), handlerSchema, expected("an object")), () => ({})),
});

/** `host:port` or `[ipv6]:port`, as sendServers names servers. */
const serverAddress = convert("a server address HOST:PORT or [IPV6]:PORT", (x) => parseServerAddress(x)?.key);
const ipLiteral = convert("an IPv4 or IPv6 address", (x) => (typeof x === "string" && isIpLiteral(x) ? x : undefined));

const peerSchema = obj({
  address: v.optional(serverAddress),
  secret: v.optional(text),
  original: v.optional(bool, false),
  tls: v.optional(bool, false),
  caFile: v.optional(text),
});

const federationSchema = obj({
  name: v.optional(text),
  peers: v.optional(v.record(v.string(), peerSchema, expected("an object")), () => ({})),
  allowOriginal: v.optional(list(ipLiteral), () => []),
  connectTimeoutMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_PEER_CONNECT_TIMEOUT_MS),
  replyTimeoutMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_PEER_REPLY_TIMEOUT_MS),
  maxHops: v.optional(int(1, MAX_SERVER_HOPS), DEFAULT_MAX_SERVER_HOPS),
});

const redisSchema = obj({
  address: v.optional(text, DEFAULT_REDIS_ADDRESS),
  port: v.optional(port, DEFAULT_REDIS_PORT),
  prefix: v.optional(str, ""), // extension: lets several gateways share one Redis
  // extensions: authentication and TLS
  username: v.optional(text),
  password: v.optional(text),
  tls: v.optional(bool, false),
  caFile: v.optional(text),
  cluster: v.optional(bool, false),
});

const databaseSchema = obj({
  type: v.optional(pick(DATABASE_TYPES), "open"),
  redis: v.optional(redisSchema, () => ({})),
  // extensions
  sqlite: v.optional(obj({ path: v.optional(text) }), () => ({})),
  allowOpenOnNetwork: v.optional(bool, false),
});

// extension (PROTOCOL.md §9)
const deliverySchema = obj({
  store: v.optional(pick(DELIVERY_STORES), DEFAULT_DELIVERY_STORE),
  sqlite: v.optional(obj({ path: v.optional(text) }), () => ({})),
  // Without it, database.redis's settings.
  redis: v.optional(redisSchema),
  inbox: v.optional(
    obj({
      maxMessages: v.optional(int(1), DEFAULT_INBOX_MAX_MESSAGES),
      maxBytes: v.optional(int(1), DEFAULT_INBOX_MAX_BYTES),
      maxAgeSeconds: v.optional(int(1, MAX_TIMER_MS / 1000), DEFAULT_INBOX_MAX_AGE_SECONDS),
    }),
    () => ({}),
  ),
});

// extension: holding back repeated login failures
const loginFailuresSchema = obj({
  enabled: v.optional(bool, true),
  perSource: v.optional(int(0), DEFAULT_LOGIN_FAILURES_PER_SOURCE),
  perUsername: v.optional(int(0), DEFAULT_LOGIN_FAILURES_PER_USERNAME),
  penaltyMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_LOGIN_PENALTY_MS),
  maxPenaltyMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_LOGIN_MAX_PENALTY_MS),
  forgetMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_LOGIN_FORGET_MS),
});

// extension (docs/CLUSTER.md)
const clusterSchema = obj({
  enabled: v.optional(bool, false),
  // It goes into Redis key hash tags and space-separated values: no braces, no white space.
  node: v.optional(convert("a node name without braces or white space", (x) => (typeof x === "string" && /^[^{}\s]{1,200}$/.test(x) ? x : undefined))),
  heartbeatMs: v.optional(int(MIN_CLUSTER_HEARTBEAT_MS, MAX_TIMER_MS), DEFAULT_CLUSTER_HEARTBEAT_MS),
  deadAfterMs: v.optional(int(MIN_CLUSTER_HEARTBEAT_MS, MAX_TIMER_MS), DEFAULT_CLUSTER_DEAD_AFTER_MS),
});

const limitsSchema = obj({
  maxFrameBytes: v.optional(int(MIN_MAX_FRAME_BYTES), DEFAULT_MAX_FRAME_BYTES),
  maxJsonDepth: v.optional(int(MIN_MAX_JSON_DEPTH, MAX_MAX_JSON_DEPTH), DEFAULT_MAX_JSON_DEPTH),
  loginFailures: v.optional(loginFailuresSchema, () => ({})),
  authTimeoutMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_AUTH_TIMEOUT_MS),
  maxConnections: v.optional(int(1), DEFAULT_MAX_CONNECTIONS),
  handlerTimeoutMs: v.optional(int(1, MAX_TIMER_MS), DEFAULT_HANDLER_TIMEOUT_MS),
  maxPendingBytes: v.optional(int(MIN_MAX_FRAME_BYTES), DEFAULT_MAX_PENDING_BYTES),
  sessionWindow: v.optional(int(1, MAX_SESSION_WINDOW), DEFAULT_SESSION_WINDOW),
  maxHandlerHops: v.optional(int(0, MAX_HANDLER_HOPS), DEFAULT_MAX_HANDLER_HOPS),
  shutdownGraceMs: v.optional(int(0, MAX_TIMER_MS), DEFAULT_SHUTDOWN_GRACE_MS),
});

const configEntries = {
  network: networkSchema,
  handlers: v.optional(handlersSchema, () => ({})),
  database: v.optional(databaseSchema, () => ({})),
  admin: v.optional(obj({ info: v.optional(v.unknown(), () => ({})) }), () => ({})),
  // extensions
  control: v.optional(
    obj({
      enabled: v.optional(bool, true),
      // Without address and port: a UNIX socket (load.ts), so that two gateways on one host never collide.
      address: v.optional(text),
      port: v.optional(port),
      socket: v.optional(text),
      token: v.optional(text),
    }),
    () => ({}),
  ),
  informer: v.optional(obj({ enabled: v.optional(bool, true), path: v.optional(text) }), () => ({})),
  federation: v.optional(federationSchema, () => ({})),
  delivery: v.optional(deliverySchema, () => ({})),
  cluster: v.optional(clusterSchema, () => ({})),
  limits: v.optional(limitsSchema, () => ({})),
  log: v.optional(
    obj({ level: v.optional(pick(LOG_LEVELS), DEFAULT_LOG_LEVEL), format: v.optional(pick(LOG_FORMATS), DEFAULT_LOG_FORMAT) }),
    () => ({}),
  ),
};
export const configSchema = obj(configEntries);
/** Top-level keys in file order; issues are reported in this order too. */
export const CONFIG_SECTIONS = Object.keys(configEntries);

/** The file after validation and defaults, before paths are resolved. */
export type ConfigFile = v.InferOutput<typeof configSchema>;

// --- unknown keys ----------------------------------------------------------------

/** Renders a path the way messages show it: `handlers.typeMap.chat`, `network.types[1]`, `a["odd key"]`. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return base === "" ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** The parts of a valibot schema object this walk reads. */
interface SchemaShape {
  kind: string;
  type: string;
  pipe?: SchemaShape[];
  entries?: Record<string, SchemaShape>;
  wrapped?: SchemaShape;
  item?: SchemaShape;
  value?: SchemaShape;
}

/**
 * Every key in `input` the schema does not know, as [path of its object, key].
 * Read off the schema itself, so a new setting can never be forgotten here.
 */
export function findUnknownKeys(schema: v.GenericSchema, input: unknown): [string, string][] {
  const found: [string, string][] = [];
  walk(schema as unknown as SchemaShape, input, "", found);
  return found;
}

function walk(s: SchemaShape, input: unknown, path: string, found: [string, string][]): void {
  if (s.type === "optional" && s.wrapped) return walk(s.wrapped, input, path, found);
  if (s.type === "loose_object" && s.entries && isPlainObject(input)) {
    for (const [key, value] of Object.entries(input)) {
      if (Object.hasOwn(s.entries, key)) walk(s.entries[key]!, value, joinPath(path, key), found);
      else found.push([path, key]);
    }
  } else if (s.type === "record" && s.value && isPlainObject(input)) {
    for (const [key, value] of Object.entries(input)) walk(s.value, value, joinPath(path, key), found);
  } else if (s.type === "array" && s.item && Array.isArray(input)) {
    input.forEach((item, i) => walk(s.item!, item, joinPath(path, i), found));
  } else if (s.pipe) {
    // obj() pipes a check into the object schema: the object is further down the pipe
    for (const item of s.pipe.slice(1)) if (item.kind === "schema") walk(item, input, path, found);
  }
}
