/**
 * The gateway's lifecycle: open listeners, own the sessions, reload, stop
 * cleanly.
 * @module
 */
import { planReload, planRenewals } from "../config/diff.ts";
import { formatIssue, loadConfigFile } from "../config/load.ts";
import type { Config, ListenerKind as ConfigListenerKind } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { encodeFrame } from "../protocol/frame.ts";
import type { Credentials } from "../protocol/messages.ts";
import { ErrorCodes, fatalMessage } from "../protocol/reports.ts";
import { type Conn, formatEndpoint, type Runtime, type SocketEvents } from "../runtime/types.ts";
import { ClosedReason } from "../connection/close-reason.ts";
import { FRAMED_EVENTS } from "../connection/framed.ts";
import { type AccountStore, openAccountStore } from "../accounts/index.ts";
import { type Hold, LoginGate, loginSource } from "../accounts/login-gate.ts";
import { HandlerHost } from "../handlers/host.ts";
import { Commands } from "./commands.ts";
import { Delivery } from "./delivery.ts";
import { deliveryRedisOptions, openDeliveryStore } from "../delivery/index.ts";
import type { RedisDeliveryStore } from "../delivery/redis.ts";
import { ClusterNode } from "../cluster/node.ts";
import { hostname } from "node:os";
import { VERSION } from "../version.ts";
import { RawJson } from "../protocol/json-cut.ts";
import { InformerService } from "../informer/service.ts";
import { admitPeer, Federation } from "./peers.ts";
import { type ListenerTls, openListener, openListeners, type OpenListener, readListenerTls, type WebSocketSide, webSocketUrls } from "./listeners.ts";
import { originRefusal } from "./origin.ts";
import { webPages } from "../web/pages.ts";
import { openFileLimit, openFilesWarning } from "./open-files.ts";
import { ClientRegistry } from "./registry.ts";
import { LOGIN_THROTTLE_CAPACITY, passwordCheckSlots, RATE_HISTORY_SAMPLES, RATE_SAMPLE_INTERVAL_MS } from "../config/defaults.ts";
import { RateHistory, rateCounters, sampleRates } from "./rate-history.ts";
import { Router } from "./router.ts";
import { Stats, UNSERVED_TYPE } from "./stats.ts";
import { type AuthResult, type ListenerKind, Session, type SessionHost, type SessionLimits } from "./session.ts";
import { SessionList } from "./session-list.ts";

/** A TLS listener's certificate this close to its end is warned about at start and on reload. */
const CERTIFICATE_WARN_DAYS = 14;

/** The type of a message POST /v1/messages delivers when the request names none. */
export const CONTROL_MESSAGE_TYPE = "control";

export class Gateway {
  readonly sessions = new SessionList<Session>();
  readonly registry = new ClientRegistry();
  readonly stats = new Stats();
  readonly handlers: HandlerHost;
  #listeners: OpenListener[] = [];
  #config: Config;
  #reloading: Promise<unknown> | undefined;
  readonly delivery: Delivery;
  /** Message and error rates over the last minutes (the status page), sampled while the gateway runs. */
  readonly rates = new RateHistory(RATE_HISTORY_SAMPLES);
  #stopSampling: (() => void) | undefined;
  #stopping = false;
  #accounts: AccountStore | undefined;
  /** What sessions see of the gateway; its `limits` follow reloads. */
  #host: SessionHost & { limits: SessionLimits };
  #federation: Federation;
  #informer: InformerService;
  /** This gateway as a node of a cluster (config `cluster`); undefined when it runs alone. */
  #cluster: ClusterNode | undefined;
  /** Throttling and a fair queue in front of the account store's password checks. */
  readonly logins: LoginGate;

  constructor(
    readonly runtime: Runtime,
    config: Config,
    readonly log: Logger,
    /** Log settings given on the command line: they outrank the file's, on every reload too. */
    private readonly logOverride: { level?: Config["log"]["level"]; format?: Config["log"]["format"] } = {},
  ) {
    this.#config = config;
    this.handlers = new HandlerHost(runtime, config, log, (reason) => this.stats.internalConnectionClosed("handler", reason));
    this.#federation = new Federation({
      runtime,
      config: () => this.config.federation,
      maxFrameBytes: () => this.config.limits.maxFrameBytes,
      maxJsonDepth: () => this.config.limits.maxJsonDepth,
      log: log.with({ component: "federation" }),
      closed: (reason) => this.stats.internalConnectionClosed("peer", reason),
    });
    this.delivery = new Delivery({
      registry: this.registry,
      // An account's existence, or with the open store (no accounts): whether the user has logged in.
      knows: async (user) => (await this.#accounts?.has(user)) ?? (await this.delivery.store?.knows(user)) ?? false,
      maxAgeSeconds: () => this.config.delivery.inbox.maxAgeSeconds,
      stats: this.stats,
      log: log.with({ component: "delivery" }),
    });
    const router = new Router(this.handlers, this.stats, this.delivery);
    // Limits are read through the gateway, so a reload reaches every command at once.
    const commands = new Commands({
      handlers: this.handlers,
      delivery: this.delivery,
      limits: () => this.config.limits,
      log,
      stats: this.stats,
      federation: this.#federation,
    });
    this.#informer = new InformerService({
      runtime,
      log: log.with({ component: "informer" }),
      closed: (reason) => this.stats.internalConnectionClosed("informer", reason),
      limits: () => this.config.limits,
      view: {
        usernames: () => (this.#cluster === undefined ? this.registry.usernames() : this.#cluster.clients().then((all) => [...all.keys()].sort())),
        isConnected: (username) => this.registry.isConnected(username) || (this.#cluster?.isClient(username) ?? false),
        clientCount: () => this.#cluster?.sessionCount() ?? this.registry.sessionCount,
        adminInfo: () => this.config.admin.info,
        listeners: () => this.#listeners.map((l) => ({ kind: l.kind, address: l.listener.address })),
      },
    });
    this.logins = new LoginGate({
      settings: () => this.config.limits.loginFailures,
      slots: passwordCheckSlots,
      capacity: LOGIN_THROTTLE_CAPACITY,
      onHold: (hold) => {
        this.stats.loginHold(hold.by);
        const who = hold.by === "source" ? { source: hold.key } : { user: hold.key };
        this.log.warn(`logins ${hold.by === "source" ? "from an address" : "of a username"} held back after repeated failures`, { ...who, ms: hold.ms });
      },
    });
    this.#host = {
      log,
      // A plain field, replaced on reload: sessions read it for every message.
      limits: config.limits,
      flow: {
        route: (session, payload, slot) => router.route(session, payload, slot),
        execute: (session, slot, command) => commands.execute(session, slot, command),
      },
      authenticate: (credentials, session, ack) => this.#authenticate(credentials, session, ack),
      admitServer: (header, session) => admitPeer(this.config.federation, header, session.remote),
      reportSent: (status) => this.stats.report(status),
      clientJoined: (session) => {
        // Registered here before it is present in the cluster: a message routed to it from then on finds the session.
        this.registry.add(session);
        return this.#cluster?.join(session.username!, session.ack);
      },
      clientReady: (session, acked) => {
        // After the cluster join: a message routed before it was stored, and so is replayed.
        if (acked !== undefined) void this.delivery.replay(session, acked);
        // Through the gateway's logger, so an idle session holds no logger of its own.
        this.log.info("client authenticated", {
          conn: session.id,
          remote: formatEndpoint(session.remote),
          user: session.username,
          listener: session.listener,
        });
      },
      sessionClosed: (session, reason, detail) => {
        this.sessions.delete(session);
        this.registry.remove(session);
        if (session.kind === "client" && session.username !== undefined) this.#cluster?.leave(session.username, session.ack);
        this.stats.connectionClosed(reason);
        const quiet = reason === ClosedReason.peerClosed || reason === ClosedReason.clientRequested;
        session.log[quiet ? "debug" : "info"]("connection closed", { reason, detail, user: session.username });
      },
    };
  }

  /** The config in force (replaced by a successful reload). */
  get config(): Config {
    return this.#config;
  }

  get listeners(): readonly OpenListener[] {
    return this.#listeners;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get accounts(): AccountStore | undefined {
    return this.#accounts;
  }

  get cluster(): ClusterNode | undefined {
    return this.#cluster;
  }

  async start(): Promise<void> {
    this.#stopSampling = sampleRates(this.rates, () => rateCounters(this.stats), RATE_SAMPLE_INTERVAL_MS, () => this.#stopping);
    this.#accounts = await openAccountStore(this.runtime, this.config.database, this.log.with({ component: "accounts" }));
    this.delivery.open(await openDeliveryStore(this.runtime, this.config.delivery, () => this.config.delivery.inbox, this.log.with({ component: "delivery" })));
    this.log.info("account store", { kind: this.#accounts.kind, ...this.#accounts.health() });
    // The informer before the handlers, which are given its path and may ask at once.
    if (this.config.informer.enabled) {
      await this.#informer.start(this.config.informer.path);
      this.log.info("informer listening", { path: this.config.informer.path });
    }
    // Handlers before the listeners, so the gateway is ready to route by the time clients can connect.
    await this.handlers.start();
    if (this.#stopping) return;
    this.#listeners = await openListeners(this.runtime, this.config.network, (kind) => this.#socketEvents(kind), this.#webSide(this.config));
    if (this.#stopping) {
      // stop() ran while the listeners were opening and saw none of them.
      await Promise.allSettled(this.#listeners.map((l) => l.listener.close()));
      return;
    }
    for (const l of this.#listeners) this.#logListening(l, this.config);
    if (this.config.cluster.enabled) await this.#joinCluster();
    await this.#checkOpenFiles(this.config.limits.maxConnections);
  }

  /** Becomes a node of the cluster on the delivery store's Redis, named after its first client port unless the config names it. */
  async #joinCluster(): Promise<void> {
    const store = this.delivery.store as RedisDeliveryStore;
    const c = this.config.cluster;
    const first = this.#listeners.find((l) => l.kind !== "unix") ?? this.#listeners[0];
    const where = first === undefined ? "0" : first.listener.address.kind === "unix" ? first.listener.address.path : String(first.listener.address.port);
    const name = c.node ?? `${hostname()}:${where}`;
    const node = new ClusterNode({
      node: name,
      heartbeatMs: c.heartbeatMs,
      deadAfterMs: c.deadAfterMs,
      redis: deliveryRedisOptions(this.config.delivery),
      prefix: store.prefix,
      version: VERSION,
      log: this.log.with({ component: "cluster" }),
      deliverLocal: (user, n) => this.delivery.deliverRouted(user, n),
      disconnectLocal: (user, reason) => this.disconnect(user, reason),
      listeners: () => this.#listeners.map((l) => `${l.kind} ${formatEndpoint(l.listener.address)}`),
    });
    this.#cluster = node;
    this.delivery.joinCluster(node, store);
    // Sessions that logged in while the listeners were opening.
    for (const s of this.sessions) if (s.kind === "client" && s.username !== undefined) void node.join(s.username, s.ack);
    await node.start();
    this.log.info("cluster node started", { node: name, ...node.health() });
  }

  #logListening({ kind, listener, tls }: OpenListener, config: Config): void {
    const ws = kind === "ws" ? config.network.ws : undefined;
    // The WebSocket listener also says where a client dials and where the web chat is.
    const urls = ws === undefined ? {} : webSocketUrls(ws, listener.address);
    this.log.info("listening", { listener: kind, address: formatEndpoint(listener.address), tls: tls !== undefined || undefined, ...urls });
    if (tls === undefined) return;
    // Renewal is the operator's job; the gateway only says, at start and on each reload, when it is due.
    const { expires } = tls;
    const days = Math.floor((expires.getTime() - Date.now()) / 86_400_000);
    if (days < CERTIFICATE_WARN_DAYS) {
      const message = days < 0 ? `the certificate of the ${kind} listener has expired` : `the certificate of the ${kind} listener expires in ${days} day${days === 1 ? "" : "s"}`;
      this.log.warn(message, { listener: kind, expires: expires.toISOString(), note: "renew its files and reload" });
    }
  }

  /** Warns when the process may open fewer files than limits.maxConnections needs (see open-files.ts). */
  async #checkOpenFiles(maxConnections: number): Promise<void> {
    const warning = openFilesWarning(maxConnections, await openFileLimit());
    if (warning) this.log.warn(warning.message, warning.fields);
  }

  /**
   * Re-reads the config file and applies the difference; an invalid file or a
   * change that cannot be made live leaves everything as it was. Concurrent
   * reloads run one after the other.
   */
  reload(): Promise<ReloadOutcome> {
    const run = (this.#reloading ?? Promise.resolve()).then(() => this.#reload());
    this.#reloading = run.catch(() => {});
    return run;
  }

  async #reload(): Promise<ReloadOutcome> {
    if (this.#stopping) return { ok: false, errors: ["the gateway is shutting down"], warnings: [] };
    const source = this.#config.source;
    if (source === null) return { ok: true, changes: [], warnings: [] }; // the embedded default cannot change
    const loaded = await loadConfigFile(source);
    if (!loaded.ok) return { ok: false, errors: loaded.errors.map(formatIssue), warnings: loaded.warnings };
    const next = loaded.config;
    const planned = planReload(this.#config, next);
    if (!planned.ok) return { ok: false, errors: planned.reasons, warnings: loaded.warnings };
    const plan = planned.plan;

    // Everything that can fail comes first, so a failure leaves the old state whole.
    // A TLS listener whose files now hold another certificate (renewed in place) is opened again with it.
    let renewed: Map<ListenerKind, ListenerTls>;
    try {
      renewed = planRenewals(plan, next.network.types, (kind) => this.#listeners.find((l) => l.kind === kind)?.tls, (kind) => readListenerTls(kind, next.network));
    } catch (err) {
      return { ok: false, errors: [(err as Error).message], warnings: loaded.warnings };
    }

    let accounts: AccountStore | undefined;
    if (plan.reopenAccounts) {
      try {
        accounts = await openAccountStore(this.runtime, next.database, this.log.with({ component: "accounts" }));
      } catch (err) {
        return { ok: false, errors: [`database: ${(err as Error).message}`], warnings: loaded.warnings };
      }
    }
    const opened: OpenListener[] = [];
    for (const kind of plan.openListeners) {
      const moving = plan.closeListeners.includes(kind) ? this.#listeners.find((l) => l.kind === kind) : undefined;
      // A listener moving to another address can only bind once the old one let go.
      if (moving && sameBinding(this.#config, next, kind)) await moving.listener.close();
      try {
        opened.push(await openListener(this.runtime, kind, next.network, this.#socketEvents(kind), renewed.get(kind), this.#webSide(next)));
      } catch (err) {
        await Promise.allSettled(opened.map((o) => o.listener.close()));
        await accounts?.close();
        const message = err instanceof Error ? err.message : String(err);
        return { ok: false, errors: [`${kind} listener: ${message}`], warnings: loaded.warnings };
      }
    }

    // From here on nothing fails: apply.
    const closing = this.#listeners.filter((l) => plan.closeListeners.includes(l.kind));
    this.#listeners = [...this.#listeners.filter((l) => !plan.closeListeners.includes(l.kind)), ...opened];
    await Promise.allSettled(closing.map((l) => l.listener.close()));
    for (const l of opened) this.#logListening(l, next);
    if (accounts) {
      const old = this.#accounts;
      this.#accounts = accounts;
      await old?.close();
    }
    const previous = this.#config;
    this.#config = next;
    this.#host.limits = next.limits;
    this.log.configure(this.logOverride.level ?? next.log.level, this.logOverride.format ?? next.log.format);
    await this.handlers.apply(next, plan.stopHandlers, plan.startHandlers);
    for (const change of plan.changes) this.log.info("reloaded", { change });
    if (next.limits.maxConnections !== previous.limits.maxConnections) await this.#checkOpenFiles(next.limits.maxConnections);
    return { ok: true, changes: plan.changes, warnings: loaded.warnings };
  }

  /** Closes every session of `username` with a fatal frame; returns how many there were. */
  disconnect(username: string, reason: string): number {
    const sessions = [...(this.registry.sessionsOf(username) ?? [])];
    for (const s of sessions) {
      s.fatal({ code: ErrorCodes.disconnected, message: reason }, null, ClosedReason.operator);
    }
    return sessions.length;
  }

  /** Closes every session of `username` on every node of the cluster; returns how many there were. */
  async disconnectEverywhere(username: string, reason: string): Promise<number> {
    const here = this.disconnect(username, reason);
    return here + ((await this.#cluster?.disconnectRemote(username, reason)) ?? 0);
  }

  /** Delivers `data` to the named users as if a handler of `type` had answered sendClients. */
  async inject(type: string, users: string[], data: unknown): Promise<{ delivered: string[]; undelivered: string[] }> {
    // Counted under its own type only if that is bounded (a handler's, or the
    // API's default): the caller names types freely, as clients do.
    const counted = type === CONTROL_MESSAGE_TYPE || this.handlers.get(type) ? type : UNSERVED_TYPE;
    const names = [...new Set(users)];
    const dataJson = data instanceof RawJson ? data.text : JSON.stringify(data);
    const unreached = await this.delivery.deliverNow(names, type, dataJson, this.stats.forType(counted));
    const missed = new Set([...unreached.offline, ...unreached.failed]);
    return { delivered: names.filter((n) => !missed.has(n)), undelivered: names.filter((n) => missed.has(n)) };
  }

  /**
   * Stops accepting; lets the messages in flight finish (bounded by
   * limits.shutdownGraceMs) while taking no new ones; then tells every client
   * why and closes; then stops the handlers.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopSampling?.();
    await Promise.allSettled(this.#listeners.map((l) => l.listener.close()));
    const shuttingDown = { code: ErrorCodes.shuttingDown, message: "the server is shutting down" };
    for (const session of this.sessions) session.drain(shuttingDown);
    const deadline = Date.now() + this.config.limits.shutdownGraceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const session of this.sessions) {
      session.fatal(shuttingDown, null, ClosedReason.shutdown);
      session.destroy();
    }
    this.#federation.closeAll();
    await this.handlers.stop();
    await this.#informer.stop();
    await this.#cluster?.stop();
    await this.#accounts?.close();
    await this.delivery.close();
  }

  #socketEvents(kind: ListenerKind): SocketEvents {
    return {
      ...FRAMED_EVENTS,
      open: (conn: Conn) => {
        if (this.#stopping) return conn.destroy();
        if (this.sessions.size >= this.config.limits.maxConnections) {
          const fatal = encodeFatal(`the server is at its limit of ${this.config.limits.maxConnections} connections`);
          conn.write(fatal, 0, fatal.length);
          this.log.warn("connection refused", { reason: ClosedReason.tooManyConnections, remote: formatEndpoint(conn.remote) });
          return conn.end("policy");
        }
        this.stats.connectionsOpened++;
        const session = new Session(kind, this.#host);
        this.sessions.add(session);
        session.attach(conn);
      },
    };
  }

  /**
   * What the WebSocket listener of `config` needs beyond its block: the
   * origin check (read from the config in force at each upgrade, so a
   * reloaded list applies at once), its pages, and its limits.
   */
  #webSide(config: Config): WebSocketSide {
    const gateway = this;
    return {
      admit: (request, remote) => {
        const ws = this.config.network.ws;
        const origin = request.headers.get("origin");
        const refusal = originRefusal(origin, request.headers.get("host"), ws?.allowedOrigins ?? [], isLoopback(ws?.address ?? ""));
        if (refusal !== undefined) {
          this.stats.websocketOriginsRefused++;
          this.log.warn("websocket refused", { remote: formatEndpoint(remote), origin: origin?.slice(0, 200), reason: refusal });
        }
        return refusal;
      },
      fetch: webPages(config.network.ws?.path ?? "/"),
      maxFrameBytes: config.limits.maxFrameBytes,
      get maxPausedBytes() {
        return gateway.config.limits.maxPendingBytes;
      },
    };
  }

  async #authenticate(credentials: Credentials, session: Session, ack: boolean): Promise<AuthResult> {
    const store = this.#accounts;
    if (!store) {
      return { ok: false, error: { code: ErrorCodes.storeUnavailable, message: "account store unavailable; try again later" } };
    }
    const { username, password } = credentials;
    const outcome = await this.logins.login(loginSource(session.remote), username, () => store.verify(username, password));
    if ("held" in outcome) return this.#heldBack(outcome.held, username, session);
    const result = outcome.checked;
    if (result.ok) {
      const delivery = await this.delivery.login(result.username, ack);
      return delivery === undefined ? { ok: true, username: result.username } : { ok: true, username: result.username, delivery };
    }
    this.stats.authFailures++;
    // Never the password; the reason tells an operator whether the user exists.
    session.log.warn("login failed", { user: credentials.username, reason: result.reason, detail: result.message });
    if (result.reason === "unavailable") {
      return { ok: false, error: { code: ErrorCodes.storeUnavailable, message: "account store unavailable; try again later" } };
    }
    // One answer for both cases, so a client cannot probe which usernames exist.
    return { ok: false, error: { code: ErrorCodes.authFailed, message: "wrong username or password" } };
  }

  /** A login refused unchecked: its address or username is held back (the hold itself was logged when it began). */
  #heldBack(hold: Hold, username: string, session: Session): AuthResult {
    this.stats.loginHeldBack(hold.by);
    session.log.debug("login refused: held back", { user: username, by: hold.by, ms: hold.ms });
    const seconds = Math.max(1, Math.ceil(hold.ms / 1000));
    const what = hold.by === "source" ? "from this address" : "for this username";
    return { ok: false, error: { code: ErrorCodes.loginThrottled, message: `too many failed logins ${what}; try again in ${seconds} s` } };
  }
}

function encodeFatal(message: string): Uint8Array {
  return encodeFrame(fatalMessage({ code: ErrorCodes.tooManyConnections, message }, null));
}

export type ReloadOutcome =
  | { ok: true; changes: string[]; warnings: string[] }
  | { ok: false; errors: string[]; warnings: string[] };

const isLoopback = (address: string) => address === "localhost" || address === "::1" || /^127\./.test(address);

/** Whether a moved listener keeps its port (so the old socket must close before the new one binds). */
function sameBinding(old: Config, next: Config, kind: ConfigListenerKind): boolean {
  if (kind === "unix") return old.network.unix?.address === next.network.unix?.address;
  return old.network[kind]?.port === next.network[kind]?.port && next.network[kind]?.port !== 0;
}
