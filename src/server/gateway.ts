/**
 * The gateway's lifecycle: open listeners, own the sessions, stop cleanly.
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { Logger } from "../log/logger.ts";
import { encodeFrame } from "../protocol/frame.ts";
import type { Credentials } from "../protocol/messages.ts";
import { ErrorCodes, fatalMessage } from "../protocol/reports.ts";
import { type Conn, formatEndpoint, type Runtime } from "../runtime/types.ts";
import { ClosedReason } from "./close-reason.ts";
import { type AccountStore, openAccountStore } from "../accounts/index.ts";
import { HandlerHost } from "../handlers/host.ts";
import { createHandlerDispatch } from "./commands.ts";
import { openListeners, type OpenListener } from "./listeners.ts";
import { ClientRegistry } from "./registry.ts";
import { createRouter } from "./router.ts";
import { Stats } from "./stats.ts";
import { type AuthResult, type ListenerKind, Session, type SessionHost } from "./session.ts";

export class Gateway {
  readonly sessions = new Set<Session>();
  readonly registry = new ClientRegistry();
  readonly stats = new Stats();
  readonly handlers: HandlerHost;
  #listeners: OpenListener[] = [];
  #bySocket = new Map<Conn, Session>();
  #router;
  #stopping = false;
  #accounts: AccountStore | undefined;
  #host: SessionHost;

  constructor(
    readonly runtime: Runtime,
    readonly config: Config,
    readonly log: Logger,
  ) {
    this.handlers = new HandlerHost(runtime, config, log);
    this.#router = createRouter(
      createHandlerDispatch({ host: this.handlers, registry: this.registry, limits: config.limits, log, stats: this.stats }),
    );
    const gateway = this;
    this.#host = {
      log,
      get limits() {
        return gateway.config.limits;
      },
      authenticate: (credentials, session) => this.#authenticate(credentials, session),
      route: (session, payload) => {
        this.stats.messageIn(payload.type);
        return this.#router.route(session, payload);
      },
      clientReady: (session) => {
        this.registry.add(session);
        session.log.info("client authenticated", { user: session.username, listener: session.listener });
      },
      sessionClosed: (session, reason, detail) => {
        this.sessions.delete(session);
        this.#bySocket.delete(session.conn);
        this.registry.remove(session);
        this.stats.connectionClosed(reason);
        const quiet = reason === ClosedReason.peerClosed || reason === ClosedReason.clientRequested;
        session.log[quiet ? "debug" : "info"]("connection closed", { reason, detail, user: session.username });
      },
    };
  }

  get listeners(): readonly OpenListener[] {
    return this.#listeners;
  }

  get accounts(): AccountStore | undefined {
    return this.#accounts;
  }

  async start(): Promise<void> {
    this.#accounts = await openAccountStore(this.runtime, this.config.database, this.log.with({ component: "accounts" }));
    this.log.info("account store", { kind: this.#accounts.kind, ...this.#accounts.health() });
    // Handlers first, so the gateway is ready to route by the time clients can connect.
    await this.handlers.start();
    if (this.#stopping) return;
    this.#listeners = await openListeners(this.runtime, this.config.network, (kind) => this.#socketEvents(kind));
    if (this.#stopping) {
      // stop() ran while the listeners were opening and saw none of them.
      await Promise.allSettled(this.#listeners.map((l) => l.listener.close()));
      return;
    }
    for (const { kind, listener } of this.#listeners) {
      this.log.info("listening", { listener: kind, address: formatEndpoint(listener.address) });
    }
  }

  /** Stops accepting, tells every client why, waits (bounded) for them to go, closes the rest. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await Promise.allSettled(this.#listeners.map((l) => l.listener.close()));
    for (const session of this.sessions) {
      session.fatal({ code: ErrorCodes.shuttingDown, message: "the server is shutting down" }, null, ClosedReason.shutdown);
    }
    const deadline = Date.now() + this.config.limits.shutdownGraceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const session of this.sessions) session.conn.destroy();
    await this.handlers.stop();
    await this.#accounts?.close();
  }

  #socketEvents(kind: ListenerKind) {
    return {
      open: (conn: Conn) => {
        if (this.#stopping) return conn.destroy();
        if (this.sessions.size >= this.config.limits.maxConnections) {
          conn.write(
            encodeFatal(`the server is at its limit of ${this.config.limits.maxConnections} connections`),
          );
          this.log.warn("connection refused", { reason: ClosedReason.tooManyConnections, remote: formatEndpoint(conn.remote) });
          return conn.end();
        }
        this.stats.connectionsOpened++;
        const session = new Session(conn, kind, this.#host);
        this.sessions.add(session);
        this.#bySocket.set(conn, session);
      },
      data: (conn: Conn, chunk: Uint8Array) => this.#bySocket.get(conn)?.onData(chunk),
      close: (conn: Conn, err?: Error) => this.#bySocket.get(conn)?.onClose(err),
    };
  }

  async #authenticate(credentials: Credentials, session: Session): Promise<AuthResult> {
    const store = this.#accounts;
    if (!store) {
      return { ok: false, error: { code: ErrorCodes.storeUnavailable, message: "account store unavailable; try again later" } };
    }
    const result = await store.verify(credentials.username, credentials.password);
    if (result.ok) return { ok: true, username: result.username };
    this.stats.authFailures++;
    // Never the password; the reason tells an operator whether the user exists.
    session.log.warn("login failed", { user: credentials.username, reason: result.reason, detail: result.message });
    if (result.reason === "unavailable") {
      return { ok: false, error: { code: ErrorCodes.storeUnavailable, message: "account store unavailable; try again later" } };
    }
    // One answer for both cases, so a client cannot probe which usernames exist.
    return { ok: false, error: { code: ErrorCodes.authFailed, message: "wrong username or password" } };
  }
}

function encodeFatal(message: string): Uint8Array {
  return encodeFrame(fatalMessage({ code: ErrorCodes.tooManyConnections, message }, null));
}
