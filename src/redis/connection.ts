/**
 * A connection to Redis that the stores share (accounts, delivery): one
 * server (`createClient`) or a Redis Cluster (`createCluster`), behind one
 * way of running commands.
 *
 * Redis going away must not take the gateway with it: commands are never
 * queued while disconnected (a caller gets an answer at once instead of
 * hanging), every answer has a deadline, the client reconnects in the
 * background with capped backoff, a heartbeat keeps health() honest about a
 * Redis that hangs without closing the connection, and the loss and the
 * recovery are each logged once.
 * @module
 */
import { createClient, createCluster, ErrorReply } from "redis";
import type { Logger } from "../log/logger.ts";

/** How long opening a store waits for the first connection attempt to succeed or fail (a dropped SYN gives neither). */
const INITIAL_CONNECT_WAIT_MS = 1500;
/** A command waits at most this long for Redis; a healthy Redis answers in well under a millisecond. */
const COMMAND_TIMEOUT_MS = 1000;
/** While idle, a PING this often keeps health() honest about a Redis that hangs without closing the connection. */
const HEARTBEAT_MS = 5000;
/** A TCP connect that gets no answer (a dropped SYN) is abandoned after this. */
const CONNECT_TIMEOUT_MS = 2000;
/** Reconnect delays double from the first to the cap, so a restarted Redis is found within the cap. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** Where Redis is and how to log in (the shape of `database.redis`, minus the prefix). */
export interface RedisConnectionOptions extends RedisEndpoint {
  /** ACL user (Redis 6+); absent: the default user. */
  username?: string;
  /** AUTH password; absent: no AUTH. */
  password?: string;
  /** Connect with TLS; `ca` (PEM) replaces the system's CAs as the ones trusted. */
  tls?: { ca?: string };
  log?: Logger;
  /** Overrides for tests and for the CLI; the defaults suit the gateway. */
  initialConnectWaitMs?: number;
  /** RESP3, so one connection carries sharded pub/sub and commands together (the cluster's connection). */
  resp3?: boolean;
  maxRetryMs?: number;
  commandTimeoutMs?: number;
}

/** How the store using a connection names itself in logs and errors. */
export interface RedisRole {
  /** "account store": the subject of the log lines ("account store lost redis"). */
  name: string;
  /** The error text for a command that could not reach Redis, from what went wrong. */
  unavailable(detail: string): string;
  /** Said in the log when Redis is lost: what callers get meanwhile. */
  note: string;
}

/** A command that could not reach Redis (or got no answer in time); its message is the role's `unavailable` text. */
export class RedisUnavailable extends Error {
  override name = "RedisUnavailable";
}

type State = "connecting" | "up" | "down" | "closed";

function socketOptions(options: RedisConnectionOptions, host: string, port: number) {
  const maxRetryMs = options.maxRetryMs ?? MAX_RETRY_MS;
  const common = {
    host,
    port,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Never gives up: the gateway outlives any Redis outage (a refused password included: it may be fixed in Redis).
    reconnectStrategy: (retries: number) => Math.min(maxRetryMs, FIRST_RETRY_MS * 2 ** Math.min(retries, 16)),
  };
  return options.tls ? { ...common, tls: true as const, ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }) } : common;
}

function clientOptions(options: RedisConnectionOptions, commandTimeoutMs: number) {
  return {
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
    // Fail fast while disconnected rather than queueing commands until Redis returns.
    disableOfflineQueue: true,
    // The client's own timeout covers only commands not yet written; run() adds the deadline for the answer.
    commandOptions: { timeout: commandTimeoutMs },
  };
}

function newClient(options: RedisConnectionOptions, commandTimeoutMs: number) {
  return createClient({
    socket: socketOptions(options, options.host, options.port),
    ...clientOptions(options, commandTimeoutMs),
    ...(options.resp3 ? { RESP: 3 as const } : {}),
  });
}

function newCluster(options: RedisConnectionOptions, seeds: RedisEndpoint[], commandTimeoutMs: number) {
  const { commandOptions, ...perNode } = clientOptions(options, commandTimeoutMs);
  return createCluster({
    rootNodes: seeds.map((s) => ({ socket: socketOptions(options, s.host, s.port) })),
    // Every node the cluster names is reached with the same login, TLS and fail-fast settings.
    defaults: { socket: socketOptions(options, options.host, options.port), ...perNode },
    commandOptions,
  });
}

export type RedisClient = ReturnType<typeof newClient>;
export type RedisCluster = ReturnType<typeof newCluster>;

function hostPort(e: RedisEndpoint): string {
  return e.host.includes(":") ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/**
 * One Redis (or one Redis Cluster) and its health. `run` gives commands a
 * deadline and turns connection trouble into {@link RedisUnavailable}; an
 * error Redis answered (an `ErrorReply`) is passed on for the caller to judge.
 */
export class RedisConnection<C extends RedisClient | RedisCluster> {
  readonly where: string;
  readonly client: C;
  readonly cluster: boolean;
  #role: RedisRole;
  #log: Logger | undefined;
  #state: State = "connecting";
  #problem = "no connection yet";
  #commandTimeoutMs: number;
  #maxRetryMs: number;
  #attempted: Array<() => void> = [];
  /** Connected, but a command went unanswered: fail fast until Redis answers again. */
  #hung = false;
  #hungAfterMs = 0;
  /** Cluster nodes whose connection is down now, by address; the cluster is up only when none is. */
  #downNodes = new Map<string, string>();
  #heartbeat: ReturnType<typeof setInterval>;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #onReady: Array<(client: RedisClient) => void> = [];

  private constructor(client: C, cluster: boolean, where: string, options: RedisConnectionOptions, role: RedisRole) {
    this.client = client;
    this.cluster = cluster;
    this.where = where;
    this.#role = role;
    this.#log = options.log?.with({ store: "redis", redis: hostPort(options) });
    this.#commandTimeoutMs = options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
    this.#maxRetryMs = options.maxRetryMs ?? MAX_RETRY_MS;
    this.#heartbeat = setInterval(() => {
      // A cluster is also pinged while down: a failed discovery of its layout is no proof that its nodes are gone.
      if (this.#state === "up" || (this.cluster && this.client.isReady)) this.#ping().catch(() => {});
    }, HEARTBEAT_MS);
    this.#heartbeat.unref?.(); // never what keeps a process alive
  }

  /** One Redis server. */
  static single(options: RedisConnectionOptions, role: RedisRole): RedisConnection<RedisClient> {
    const conn = new RedisConnection(newClient(options, options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS), false, `redis at ${hostPort(options)}`, options, role);
    const client = conn.client;
    // The client emits "error" on every failed attempt; without a listener that would crash the process.
    client.on("error", (err: unknown) => conn.#markDown(describeError(err)));
    client.on("ready", () => {
      conn.#hung = false; // a fresh connection
      for (const f of conn.#onReady) f(client);
      conn.#markUp();
    });
    // connect() settles only once connected (it retries forever) or when closed; state comes from the events.
    client.connect().catch(() => {});
    return conn;
  }

  /** A Redis Cluster, found through `options` (host and port) and any further `seeds`. */
  static cluster(options: RedisConnectionOptions, role: RedisRole, seeds: RedisEndpoint[] = []): RedisConnection<RedisCluster> {
    const all = [{ host: options.host, port: options.port }, ...seeds];
    const cluster = newCluster(options, all, options.commandTimeoutMs ?? COMMAND_TIMEOUT_MS);
    const conn = new RedisConnection(cluster, true, `redis cluster at ${all.map(hostPort).join(",")}`, options, role);
    // "error" is a failed discovery of the cluster's layout; the nodes report their own connections.
    cluster.on("error", (err: unknown) => conn.#markDown(describeError(err)));
    cluster.on("node-error", (err: unknown, node: RedisEndpoint) => {
      const problem = `${describeError(err)} (node ${hostPort(node)})`;
      conn.#downNodes.set(hostPort(node), problem);
      conn.#markDown(problem);
    });
    cluster.on("node-ready", (node: RedisEndpoint) => {
      conn.#downNodes.delete(hostPort(node));
      conn.#hung = false;
      const client = cluster.masters.find((m) => m.host === node.host && m.port === node.port)?.client;
      if (client !== undefined) for (const f of conn.#onReady) f(client as RedisClient);
      if (cluster.isReady) conn.#markUp();
    });
    // A node the cluster stopped naming (its slots moved on) no longer counts.
    cluster.on("node-disconnect", (node: RedisEndpoint) => {
      if (conn.#downNodes.delete(hostPort(node)) && cluster.isReady) conn.#markUp();
    });
    conn.#connectCluster(0);
    return conn;
  }

  /** The cluster client does not retry its first discovery by itself; this does, with the same backoff. */
  #connectCluster(attempt: number): void {
    const cluster = this.client as RedisCluster;
    cluster.connect().then(
      () => {
        if (this.#state === "closed") return;
        if (this.#downNodes.size === 0) this.#markUp();
      },
      (err: unknown) => {
        if (this.#state === "closed") return;
        this.#markDown(describeError(err));
        this.#retry = setTimeout(() => this.#connectCluster(attempt + 1), Math.min(this.#maxRetryMs, FIRST_RETRY_MS * 2 ** Math.min(attempt, 16)));
      },
    );
  }

  /**
   * Calls `f` with each node's client when it (re)connects, before any
   * command of a caller can reach it (what it sends goes first).
   */
  onNodeReady(f: (client: RedisClient) => void): void {
    this.#onReady.push(f);
  }

  /** Resolves once the first connection attempt has succeeded or failed, or after `ms`. */
  firstAttempt(ms: number): Promise<void> {
    if (this.#state !== "connecting") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#attempted = this.#attempted.filter((f) => f !== done);
        resolve();
      }, ms);
      this.#attempted.push(done);
    });
  }

  /** The default wait of {@link firstAttempt}. */
  static readonly INITIAL_CONNECT_WAIT_MS = INITIAL_CONNECT_WAIT_MS;

  health(): { ok: boolean; detail: string } {
    switch (this.#state) {
      case "up":
        return { ok: true, detail: this.where };
      case "closed":
        return { ok: false, detail: "closed" };
      default:
        return { ok: false, detail: this.#hung && this.client.isReady ? this.#unanswered() : this.#unreachable() };
    }
  }

  close(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#attempted.splice(0).forEach((f) => f());
    clearInterval(this.#heartbeat);
    clearTimeout(this.#retry);
    // destroy, not close: nothing is in flight worth waiting for, and a reconnect loop must stop now.
    this.client.destroy();
  }

  /**
   * One command (or a few) against a connected Redis, with a deadline for the
   * answer; connection trouble and hangs become {@link RedisUnavailable}.
   * Past the deadline the command may still be carried out: `late` gets the
   * answer if it comes after all.
   */
  async run<T>(fn: (client: C) => Promise<T>, timeoutMs = this.#commandTimeoutMs, late?: (value: T) => void): Promise<T> {
    if (this.#state === "closed") throw new RedisUnavailable(this.#role.unavailable(`the redis ${this.#role.name} is closed`));
    if (!this.client.isReady) throw new RedisUnavailable(this.#role.unavailable(this.#unreachable()));
    // Adding commands behind one Redis has not answered would only pile them up.
    if (this.#hung) throw new RedisUnavailable(this.#role.unavailable(this.#unanswered()));
    const pending = fn(this.client);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    try {
      const outcome = await Promise.race([pending.then((value) => ({ value })), deadline]);
      if (outcome === "timeout") {
        this.#hung = true;
        this.#hungAfterMs = timeoutMs;
        this.#markDown(`no answer within ${timeoutMs} ms`);
        // Whatever Redis finally answers to this command shows it is back.
        pending.then(
          (value) => {
            this.#answered();
            late?.(value);
          },
          (err) => err instanceof ErrorReply && this.#answered(),
        );
        throw new RedisUnavailable(this.#role.unavailable(this.#unanswered()));
      }
      this.#markUp();
      return outcome.value;
    } catch (err) {
      if (err instanceof RedisUnavailable) throw err;
      if (err instanceof ErrorReply) {
        this.#markUp(); // Redis answered; the caller decides what the error means
        throw err;
      }
      // The connection dropped mid-command; the "error" event has recorded why.
      throw new RedisUnavailable(this.#role.unavailable(this.#unreachable()));
    } finally {
      clearTimeout(timer);
    }
  }

  /** PING every node (one for a single Redis, each master of a cluster), each within the deadline. */
  #ping(): Promise<unknown> {
    if (!this.cluster) return this.run((c) => (c as RedisClient).ping());
    const cluster = this.client as RedisCluster;
    return Promise.all(cluster.masters.map((m) => this.run(async () => (await cluster.nodeClient(m)).ping())));
  }

  #unreachable(): string {
    return refusedLogin(this.#problem, this.where) ?? `${this.where} is not reachable (${this.#problem})`;
  }

  #unanswered(): string {
    return `${this.where} did not answer within ${this.#hungAfterMs} ms`;
  }

  #answered() {
    if (!this.#hung) return;
    this.#hung = false;
    this.#markUp();
  }

  #markDown(problem: string) {
    if (this.#state === "closed") return;
    this.#problem = problem;
    if (this.#state === "down") return; // logged when it went down; retries stay quiet
    const first = this.#state === "connecting";
    this.#state = "down";
    this.#attempted.splice(0).forEach((f) => f());
    const refused = refusedLogin(problem, this.where);
    const name = this.#role.name;
    this.#log?.warn(refused ? `${name} cannot log in to redis` : first ? `${name} cannot reach redis` : `${name} lost redis`, {
      error: refused ?? problem,
      note: this.#role.note,
    });
  }

  #markUp() {
    if (this.#state === "up" || this.#state === "closed") return;
    // A cluster is up when every node is; one answering says nothing of the others.
    if (this.#downNodes.size > 0) return;
    const recovered = this.#state === "down";
    this.#state = "up";
    this.#problem = "";
    this.#log?.info(recovered ? `${this.#role.name} reconnected to redis` : `${this.#role.name} connected to redis`);
    this.#attempted.splice(0).forEach((f) => f());
  }
}

export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node reports a refused dual-stack connect as an AggregateError with an empty message.
  if (err.message === "" && err instanceof AggregateError) return err.errors.map(describeError).join("; ");
  return err.message || (err as { code?: string }).code || err.name;
}

/** What an authentication refusal means for the operator; undefined for any other problem. */
function refusedLogin(problem: string, where: string): string | undefined {
  const fix = "database.redis.password (or BESTER_REDIS_PASSWORD) and database.redis.username";
  if (problem.startsWith("NOAUTH")) return `${where} requires a password and none is set; see ${fix}`;
  if (problem.startsWith("WRONGPASS")) return `${where} refused the username and password (${problem}); see ${fix}`;
  return undefined;
}
