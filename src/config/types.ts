/**
 * The config as the rest of the gateway sees it, once loaded and normalised
 * (load.ts builds it from the file's shape in schema.ts): the types, the
 * names each closed set of values allows, and the shape of a config issue.
 * Nothing here imports another module, so every module may import it.
 *
 * @module
 */

export type ListenerKind = "tcp4" | "tcp6" | "unix" | "ws";
export interface HandlerConfig {
  type: string;
  handlerBinary?: string;
  /** Extension: a handler bundled with bester, run from this same program (`bester handler NAME`). */
  bundled?: BundledHandlerName;
  handlerArgs: string[];
  unixDomainSocketPath: string;
  mode: "per-message" | "persistent";
  connections: number;
  envelope: boolean;
  timeoutMs: number;
}
/** Extension: another Bester server this one exchanges sendServers messages with (docs/FEDERATION.md). */
export interface PeerConfig {
  /** The peer's name: what it sends as `header.authentication.server`, and the key in `federation.peers`. */
  name: string;
  /** Where it is dialled, canonical `host:port` or `[ipv6]:port`; absent for a peer that only dials us. */
  address?: string;
  /** The secret both sides share; absent for an original-protocol peer. */
  secret?: string;
  /** An original Bester server: dialled without credentials (it reads none; its status report is awaited as any peer's). */
  original: boolean;
  /** Dialled with TLS (its listener has `tls`). */
  tls: boolean;
  /** PEM file of the CA that signed its certificate (absolute); absent: the system's CAs. */
  caFile?: string;
}
export interface FederationConfig {
  /** This server's name, sent to peers with the secret. Required once a peer has a secret. */
  name?: string;
  /** No prototype, like typeMap. */
  peers: Record<string, PeerConfig>;
  /** IP addresses from which server-scope connections without credentials (original servers) are accepted. */
  allowOriginal: string[];
  connectTimeoutMs: number;
  replyTimeoutMs: number;
  maxHops: number;
}
/** A TCP listener's certificate chain and key, as PEM files (absolute paths once loaded). */
export interface TlsListenerConfig {
  certFile: string;
  keyFile: string;
}

/** Extension (PROTOCOL.md §10): the WebSocket listener, for browsers. */
export interface WsListenerConfig {
  address: string;
  port: number;
  /** The path upgrades are taken on; the port's other paths serve the web chat page and the browser SDK. */
  path: string;
  tls?: TlsListenerConfig;
  /** Browser origins (`https://app.example.com`) besides the listener's own that may open a WebSocket. */
  allowedOrigins: string[];
}

/**
 * Extension: where the HTTP control API listens. On TCP when the file gives
 * an address or a port (the embedded default: 127.0.0.1:2280); otherwise on
 * a UNIX socket (mode 0600: the file's permissions are the access check).
 */
export type ControlConfig = { enabled: boolean; token?: string } & (
  | { address: string; port: number; socket?: undefined }
  | { socket: string; address?: undefined; port?: undefined }
);

/** Where a Redis server is and how to log in to it (`database.redis`, `delivery.redis`). */
export interface RedisConnection {
  address: string;
  port: number;
  prefix: string;
  /** Redis 6 ACL user; absent: the default user. */
  username?: string;
  /** Absent here: BESTER_REDIS_PASSWORD, read when the store opens (a secret kept out of the file). */
  password?: string;
  tls: boolean;
  /** PEM file of the CA that signed Redis's certificate (resolved beside the config); absent: the system's CAs. */
  caFile?: string;
  /** A Redis Cluster: `address:port` is one of its nodes (the delivery store; the account store takes a single server). */
  cluster: boolean;
}

/** Extension (PROTOCOL.md §9): where messages wait for users who are not connected, and for acknowledgements. */
export interface DeliveryConfig {
  /** `none`: the original behaviour (only connected users receive). */
  store: "sqlite" | "redis" | "none";
  sqlite: { path: string };
  /** Its own block, or `database.redis`'s settings. */
  redis: RedisConnection;
  inbox: { maxMessages: number; maxBytes: number; maxAgeSeconds: number };
}

/** Extension (docs/CLUSTER.md): several gateways acting as one service on the Redis of `delivery.redis`. */
export interface ClusterConfig {
  enabled: boolean;
  /** Unique in the cluster; absent: the host name and the first client port, decided at start. */
  node?: string;
  heartbeatMs: number;
  deadAfterMs: number;
}

/** Extension: how repeated login failures are held back (accounts/throttle.ts). */
export interface LoginFailuresConfig {
  enabled: boolean;
  /** Failures from one source before it is held back; 0: sources are not held back. */
  perSource: number;
  /** Different sources failing on one username before it is held back; 0: usernames are not held back. */
  perUsername: number;
  penaltyMs: number;
  maxPenaltyMs: number;
  forgetMs: number;
}

export interface Config {
  source: string | null;
  network: {
    types: ListenerKind[];
    /** `mode`: extension, the socket file's permissions (the umask does not apply). */
    unix?: { address: string; mode: number };
    tcp4?: { address: string; port: number; tls?: TlsListenerConfig };
    tcp6?: { address: string; port: number; tls?: TlsListenerConfig };
    ws?: WsListenerConfig;
  };
  /** typeMap has no prototype: look types up with Object.hasOwn or `in`, never trust `typeMap[type]` alone for client-chosen names. */
  handlers: { availableTypes: string[]; typeMap: Record<string, HandlerConfig> };
  database: {
    type: "open" | "sqlite" | "redis";
    redis: RedisConnection;
    sqlite: { path: string };
    allowOpenOnNetwork: boolean;
  };
  admin: { info: unknown };
  control: ControlConfig;
  informer: { enabled: boolean; path: string };
  federation: FederationConfig;
  delivery: DeliveryConfig;
  cluster: ClusterConfig;
  limits: {
    maxFrameBytes: number;
    /** Extension: deepest nesting of arrays and objects in one frame (every connection kind). */
    maxJsonDepth: number;
    /** Extension: failed logins held back per source address and per username (accounts/throttle.ts). */
    loginFailures: LoginFailuresConfig;
    authTimeoutMs: number;
    maxConnections: number;
    handlerTimeoutMs: number;
    maxPendingBytes: number;
    sessionWindow: number;
    maxHandlerHops: number;
    shutdownGraceMs: number;
  };
  log: { level: "debug" | "info" | "warn" | "error"; format: "text" | "json" };
}

/** Handlers shipped inside bester itself (handlers/ in the repo), runnable as `bester handler NAME`. */
export const BUNDLED_HANDLERS = ["echo", "chat", "shout"] as const;
export type BundledHandlerName = (typeof BUNDLED_HANDLERS)[number];
export const LISTENER_KINDS = ["unix", "tcp4", "tcp6", "ws"] as const;
export const HANDLER_MODES = ["per-message", "persistent"] as const;
export const DATABASE_TYPES = ["open", "sqlite", "redis"] as const;
export const DELIVERY_STORES = ["sqlite", "redis", "none"] as const;
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export const LOG_FORMATS = ["text", "json"] as const;

/** One thing wrong with a config: the key's path ("" for the file as a whole) and what is wrong. */
export interface ConfigIssue {
  path: string;
  message: string;
}
