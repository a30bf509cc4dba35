/**
 * Every limit, timeout and port the gateway uses, each with the reason for its
 * value, and the embedded default config used when no file is given.
 *
 * This module imports nothing at run time from the rest of config/, so the
 * schema and the loader can both depend on it without an import cycle.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { availableParallelism, homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import process from "node:process";
import { BUNDLED_HANDLERS, type Config, type HandlerConfig } from "./types.ts";

// --- limits (config key `limits`) -------------------------------------------

/** PROTOCOL.md §1: checked against the length prefix before the body is read, so one peer can make us buffer at most this much; 1 MiB holds any chat-sized message. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** Below this not even a fatal error with its message fits in a frame. */
export const MIN_MAX_FRAME_BYTES = 64;

/**
 * How deeply arrays and objects may nest in one frame. Engines parse and
 * serialise JSON recursively, so a deep enough value overflows the stack
 * and stalls the event loop while it unwinds; real messages nest a handful
 * of levels, and 128 (serde_json's default) leaves them plenty of room.
 */
export const DEFAULT_MAX_JSON_DEPTH = 128;
/** Lower bound for the setting: a handler's sendClients answer nests its list of recipients four deep. */
export const MIN_MAX_JSON_DEPTH = 4;
/** Upper bound for the setting: far below the tens of thousands of levels where Bun's JSON.stringify runs out of stack. */
export const MAX_MAX_JSON_DEPTH = 4096;

/** A connection that never sends its first frame holds a socket; a real client sends it within milliseconds, 10 s leaves room for slow links. */
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;

/** Bounds file descriptors a connection flood can take; raise `ulimit -n` above this for real deployments. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** A handler that has not answered in 5 s is stuck, not slow; the originator then gets "bad" instead of waiting forever. */
export const DEFAULT_HANDLER_TIMEOUT_MS = 5_000;

/** Slow-consumer limit: eight maximal frames queued for one connection; past it the reader is too slow to keep and is closed. */
export const DEFAULT_MAX_PENDING_BYTES = 8 * 1024 * 1024;

/**
 * A WebSocket message is read whole by the runtime before the frame limit
 * can look at it. Messages up to this many times limits.maxFrameBytes are
 * read, so a sender a little over the limit learns why (the fatal frame,
 * then close code 1009); a larger one is cut by the runtime's WebSocket
 * server (1009 alone), so one connection makes the gateway hold at most
 * that much. Set when the listener opens.
 */
export const WEBSOCKET_MESSAGE_LIMIT_FACTOR = 2;

/** Messages of one session in flight at once (processed in order); past it reading from that socket pauses, which pushes back on the sender. */
export const DEFAULT_SESSION_WINDOW = 64;
/** A window beyond this buys no throughput and lets one session hold a lot of memory. */
export const MAX_SESSION_WINDOW = 65_536;

/** sendHandler chains longer than this are almost surely cycles; they end in "bad" (PROTOCOL.md §4). */
export const DEFAULT_MAX_HANDLER_HOPS = 8;
/** Upper bound for the setting: each hop is a round trip through a handler, so deeper chains only hide cycles. */
export const MAX_HANDLER_HOPS = 64;

/** Time in-flight messages get to finish on shutdown before connections are cut; shorter than typical service-manager stop timeouts (systemd: 90 s). */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

// --- logins (config key `limits.loginFailures`) -------------------------------

/**
 * Password checks (scrypt) run at once: each takes a core and 16 MiB while
 * it runs, so one per core keeps the cores busy and memory flat however many
 * logins arrive together; the rest wait their turn, taken in turn by address.
 */
export function passwordCheckSlots(): number {
  return Math.max(1, availableParallelism());
}

/** Failures from one address before it is held back: room for a few typing mistakes, too few for guessing. */
export const DEFAULT_LOGIN_FAILURES_PER_SOURCE = 5;
/**
 * Different addresses failing on one username before it is held back: a
 * user mistyping on a phone, a laptop and a desktop is three; ten within
 * the forget time is a guess spread over many addresses.
 */
export const DEFAULT_LOGIN_FAILURES_PER_USERNAME = 10;
/** The first hold: a second is nothing to someone who mistyped, and already slows a script down. */
export const DEFAULT_LOGIN_PENALTY_MS = 1_000;
/** Holds double up to this: from the tenth hold on, a guesser gets five tries per five minutes. */
export const DEFAULT_LOGIN_MAX_PENALTY_MS = 300_000;
/** Failures and holds older than this (without a new failure) are forgotten; fail2ban's usual findtime. */
export const DEFAULT_LOGIN_FORGET_MS = 600_000;
/**
 * Addresses and usernames whose failures are remembered, each; past it the
 * oldest are forgotten, so a flood of made-up names cannot grow memory
 * (an entry is about a hundred bytes).
 */
export const LOGIN_THROTTLE_CAPACITY = 65_536;

// --- federation (config key `federation`) -----------------------------------

/** Dialling a peer: a server on a working network accepts within milliseconds; 3 s allows a slow link without holding the sender long. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 3_000;
/**
 * How long a sendServers waits for the peer's status report. The peer runs its
 * own handler (default timeout 5 s) and may forward further, so this must be
 * longer than one handler's timeout; 10 s.
 */
export const DEFAULT_PEER_REPLY_TIMEOUT_MS = 10_000;
/**
 * Server-to-server hops a message may make (A -> B is one). Real relays need
 * one or two; four leaves room, and a loop between servers ends after it.
 */
export const DEFAULT_MAX_SERVER_HOPS = 4;
/** Upper bound for the setting: every hop holds a connection open on each server behind it. */
export const MAX_SERVER_HOPS = 32;
/** A shared secret shorter than this is guessable; refused in the config. */
export const MIN_PEER_SECRET_LENGTH = 16;

// --- delivery (config key `delivery`, PROTOCOL.md §9) ------------------------

/** One gateway keeps what it reported good in a file of its own; `none` is the original behaviour. */
export const DEFAULT_DELIVERY_STORE = "sqlite" as const;
/** Messages one user may have waiting: a phone a day offline in a busy chat, not a mailbox. */
export const DEFAULT_INBOX_MAX_MESSAGES = 1000;
/** Bytes of data one user may have waiting: with the frame limit (1 MiB), one large message or many chat-sized ones. */
export const DEFAULT_INBOX_MAX_BYTES = 1024 * 1024;
/** A message not fetched within a week has lost its meaning for most uses (a chat line, a notice). */
export const DEFAULT_INBOX_MAX_AGE_SECONDS = 7 * 24 * 3600;
/** Stored messages replayed at a login per read of the store: a thousand users logging in at once take turns, page by page. */
export const REPLAY_PAGE_MESSAGES = 100;
/** How often messages older than delivery.inbox.maxAgeSeconds are looked for and removed. */
export const INBOX_EXPIRY_SWEEP_MS = 60_000;
/**
 * Pages the SQLite delivery store's write-ahead log may hold before they are
 * copied into the file (a checkpoint, which syncs the disk and blocks the
 * event loop while it runs). SQLite's default, 1000 (4 MiB), checkpoints a
 * busy acknowledged stream several times a second; at 4096 (16 MiB) a page
 * rewritten again and again (messages stored, then acknowledged) is copied
 * once per checkpoint, and the log stays small on disk.
 */
export const DELIVERY_WAL_CHECKPOINT_PAGES = 4096;
/** Delivery store file name when the file names none: after the config file, beside it (like the gateway's own sockets). */
export const DELIVERY_DB_SUFFIX = ".delivery.db";

// --- cluster (config key `cluster`, docs/CLUSTER.md) -------------------------

/**
 * How often a node says it is alive. Each beat is one small script on Redis
 * per node, so a short interval costs Redis next to nothing; 3 s lets a
 * dead node be noticed well within deadAfterMs.
 */
export const DEFAULT_CLUSTER_HEARTBEAT_MS = 3000;
/**
 * A node silent this long is declared dead and its sessions purged. Over
 * three beats, so a missed beat or two (a GC pause, a busy Redis) is no
 * death; short enough that messages for its users go to their inboxes within
 * seconds instead of being published to a node that is gone.
 */
export const DEFAULT_CLUSTER_DEAD_AFTER_MS = 10_000;
/** Below this a timer's jitter is a sizeable part of the interval; also the floor for deadAfterMs. */
export const MIN_CLUSTER_HEARTBEAT_MS = 50;
/** deadAfterMs must be at least this many heartbeats, so one late beat never kills a node. */
export const MIN_CLUSTER_BEATS_PER_DEATH = 2;
/**
 * Users one purge step takes of a dead node (HSCAN COUNT): a node with many
 * users is purged in pipelined pages, never in one long script that would
 * stall Redis.
 */
export const CLUSTER_PURGE_PAGE = 500;
/** A purge claimed by a node that then died itself is taken over after this. */
export const CLUSTER_PURGE_TAKEOVER_MS = 30_000;
/**
 * Users whose presence one node is writing to Redis at once. A mass login or
 * logout (a load balancer moving thousands of clients) queues in the node
 * instead of sending tens of thousands of commands at once, which would
 * leave the last of them unanswered past the command deadline and mark
 * Redis as lost; 128 users' writes keep a Redis round trip full.
 */
export const PRESENCE_STEPS_IN_FLIGHT = 128;
/** After Redis comes back, how long the probe published to the node itself may take to arrive before it is tried again. */
export const CLUSTER_PROBE_TIMEOUT_MS = 2000;

// --- informer ---------------------------------------------------------------

/** Informer connections open at once; handlers keep one or a few each, so this only stops a runaway. */
export const INFORMER_MAX_CONNECTIONS = 256;

/** setTimeout fires at once for delays above 2^31-1 ms, so no timeout may exceed it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

// --- handlers (per-handler extensions) --------------------------------------

/** One kept connection already pipelines (PROTOCOL.md §4); more only help handlers that answer in parallel. */
export const DEFAULT_HANDLER_CONNECTIONS = 1;
/** Each kept connection is a socket held open in both processes; 64 is far past where pipelining stops gaining. */
export const MAX_HANDLER_CONNECTIONS = 64;

// --- ports and addresses ----------------------------------------------------

/** The original daemon's client port over IPv4 (PROTOCOL.md §8). */
export const DEFAULT_TCP4_PORT = 2220;
/** The original daemon's client port over IPv6 (PROTOCOL.md §8). */
export const DEFAULT_TCP6_PORT = 2221;
/**
 * The WebSocket listener (PROTOCOL.md §10), next to the original's 2220 and
 * 2221: the embedded default's protocol ports sit together, and 2222 is no
 * well-known service's.
 */
export const DEFAULT_WS_PORT = 2222;
/** A browser on the same machine can reach it; the network only when the config says so. */
export const DEFAULT_WS_ADDRESS = "127.0.0.1";
/** Where the WebSocket listener takes upgrades: the port's other paths serve the web chat page and the browser SDK. */
export const DEFAULT_WS_PATH = "/bester";
/** Control API: beside the protocol ports, clear of well-known services. */
export const DEFAULT_CONTROL_PORT = 2280;
/** Control API actions (reload, shutdown) must not be reachable from the network unless asked for. */
export const DEFAULT_CONTROL_ADDRESS = "127.0.0.1";
/** Redis's own defaults, so a local Redis works without settings. */
export const DEFAULT_REDIS_ADDRESS = "127.0.0.1";
export const DEFAULT_REDIS_PORT = 6379;

/**
 * The client UNIX socket's mode: the gateway's user and group may connect
 * (they still log in). With per-user groups that is the user alone; a
 * service with a group of its own adds its clients' users to it.
 */
export const DEFAULT_UNIX_SOCKET_MODE = 0o660;

// --- file names -------------------------------------------------------------

/**
 * Sockets a gateway binds for itself (the informer; the control API when the
 * file gives it no address) end in these, after a name made from the config
 * file's: two gateways whose files share a folder never reach for one path.
 */
export const INFORMER_SOCKET_SUFFIX = ".informer";
export const CONTROL_SOCKET_SUFFIX = ".control";
/** SQLite account store name when the file names none; placed beside the config file. */
export const SQLITE_FILE_NAME = "bester-accounts.db";

/** The longest UNIX socket path the OS can bind (sun_path), set by the runtime layer that binds them. */
export { MAX_SOCKET_PATH_BYTES as MAX_UNIX_SOCKET_PATH_BYTES } from "../runtime/unix-path.ts";

// --- log --------------------------------------------------------------------

export const DEFAULT_LOG_LEVEL = "info" as const;
export const DEFAULT_LOG_FORMAT = "text" as const;

// --- control API status page --------------------------------------------------

/** The status page refreshes every 2 s; sampling the counters as often gives it a new rate point on every refresh. */
export const RATE_SAMPLE_INTERVAL_MS = 2_000;
/** Ten minutes of 2 s samples: "the last minutes" an operator looks back on, in a few KB of numbers. */
export const RATE_HISTORY_SAMPLES = 301;

// --- the embedded default ---------------------------------------------------

/**
 * A private per-user directory for sockets: `$XDG_RUNTIME_DIR/bester` when the
 * session has one (tmpfs, owned by the user), else `<tmpdir>/bester-<uid>`.
 * Not created here; whoever binds a socket in it creates it with mode 0700.
 */
export function defaultRunDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  if (xdg) return join(xdg, "bester");
  return join(tmpdir(), `bester-${process.getuid?.() ?? "user"}`);
}

/**
 * Where the gateway of the config file `source` binds a socket of its own
 * (`suffix`: INFORMER_SOCKET_SUFFIX or CONTROL_SOCKET_SUFFIX) when the file
 * names none: in the folder of its client socket, else in the run directory,
 * named after the file and a digest of its path. Only the file decides it,
 * so `bester ctl --config FILE` finds it, and moving the client socket
 * within its folder on a reload leaves it where it is.
 */
export function ownSocketPath(clientSocket: string | undefined, source: string, suffix: string): string {
  const digest = createHash("sha256").update(source).digest("hex").slice(0, 8);
  return join(clientSocket === undefined ? defaultRunDir() : dirname(clientSocket), `${configStem(source)}-${digest}${suffix}`);
}

/** A file the gateway of the config file `source` keeps for itself: beside it, named after it (`server.conf` → `server` + suffix). */
export function ownFilePath(source: string, suffix: string): string {
  return join(dirname(source), configStem(source) + suffix);
}

/** The config file's name without its extension. */
function configStem(source: string): string {
  return basename(source).replace(/\.[^.]*$/, "") || "bester";
}

/**
 * Where the embedded default keeps what must outlive the process (the
 * delivery store): `$XDG_STATE_HOME/bester`, else `~/.local/state/bester`.
 * Never the run directory, which is a tmpfs the session's end empties.
 */
export function defaultStateDir(): string {
  const xdg = process.env.XDG_STATE_HOME;
  if (xdg) return join(xdg, "bester");
  return join(homedir(), ".local", "state", "bester");
}

/**
 * The handlers the embedded default enables: the bundled ones (handlers/ in
 * the repo), run from this same program as `bester handler NAME`, so a user
 * with only the binary can chat at once. They need the envelope to know the
 * sender, and speak the pipelined persistent mode.
 */
export function bundledHandlers(runDir: string): HandlerConfig[] {
  return BUNDLED_HANDLERS.map((name) => ({
    type: name,
    bundled: name,
    handlerArgs: [],
    unixDomainSocketPath: join(runDir, `handler-${name}.sock`),
    mode: "persistent",
    connections: DEFAULT_HANDLER_CONNECTIONS,
    envelope: true,
    timeoutMs: DEFAULT_HANDLER_TIMEOUT_MS,
  }));
}

/**
 * The config used when no file is given: works at once for a developer and
 * exposes nothing, since every listener is on loopback or in `runDir`, and the
 * "open" account store (any password) is therefore acceptable.
 */
export function embeddedDefaultConfig(runDir: string): Config {
  const handlers = bundledHandlers(runDir);
  return {
    source: null,
    network: {
      types: ["unix", "tcp4", "tcp6", "ws"],
      unix: { address: join(runDir, "bester.sock"), mode: DEFAULT_UNIX_SOCKET_MODE },
      tcp4: { address: "127.0.0.1", port: DEFAULT_TCP4_PORT },
      tcp6: { address: "::1", port: DEFAULT_TCP6_PORT },
      ws: { address: DEFAULT_WS_ADDRESS, port: DEFAULT_WS_PORT, path: DEFAULT_WS_PATH, allowedOrigins: [] },
    },
    handlers: {
      availableTypes: handlers.map((h) => h.type),
      typeMap: Object.assign(Object.create(null), Object.fromEntries(handlers.map((h) => [h.type, h]))),
    },
    database: {
      type: "open",
      redis: { address: DEFAULT_REDIS_ADDRESS, port: DEFAULT_REDIS_PORT, prefix: "", tls: false, cluster: false },
      sqlite: { path: join(runDir, SQLITE_FILE_NAME) },
      allowOpenOnNetwork: false,
    },
    admin: { info: {} },
    control: { enabled: true, address: DEFAULT_CONTROL_ADDRESS, port: DEFAULT_CONTROL_PORT },
    informer: { enabled: true, path: join(runDir, "informer.sock") },
    delivery: {
      store: DEFAULT_DELIVERY_STORE,
      sqlite: { path: join(defaultStateDir(), "delivery.db") },
      redis: { address: DEFAULT_REDIS_ADDRESS, port: DEFAULT_REDIS_PORT, prefix: "", tls: false, cluster: false },
      inbox: { maxMessages: DEFAULT_INBOX_MAX_MESSAGES, maxBytes: DEFAULT_INBOX_MAX_BYTES, maxAgeSeconds: DEFAULT_INBOX_MAX_AGE_SECONDS },
    },
    cluster: { enabled: false, heartbeatMs: DEFAULT_CLUSTER_HEARTBEAT_MS, deadAfterMs: DEFAULT_CLUSTER_DEAD_AFTER_MS },
    federation: {
      peers: Object.create(null),
      allowOriginal: [],
      connectTimeoutMs: DEFAULT_PEER_CONNECT_TIMEOUT_MS,
      replyTimeoutMs: DEFAULT_PEER_REPLY_TIMEOUT_MS,
      maxHops: DEFAULT_MAX_SERVER_HOPS,
    },
    limits: {
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
      loginFailures: {
        enabled: true,
        perSource: DEFAULT_LOGIN_FAILURES_PER_SOURCE,
        perUsername: DEFAULT_LOGIN_FAILURES_PER_USERNAME,
        penaltyMs: DEFAULT_LOGIN_PENALTY_MS,
        maxPenaltyMs: DEFAULT_LOGIN_MAX_PENALTY_MS,
        forgetMs: DEFAULT_LOGIN_FORGET_MS,
      },
      authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      handlerTimeoutMs: DEFAULT_HANDLER_TIMEOUT_MS,
      maxPendingBytes: DEFAULT_MAX_PENDING_BYTES,
      sessionWindow: DEFAULT_SESSION_WINDOW,
      maxHandlerHops: DEFAULT_MAX_HANDLER_HOPS,
      shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
    },
    log: { level: DEFAULT_LOG_LEVEL, format: DEFAULT_LOG_FORMAT },
  };
}
