/**
 * The handler host: for every configured type, the link that carries requests
 * to it and, when the config names a program, the supervisor that runs it.
 * @module
 */
import { dirname } from "node:path";
import type { Config, HandlerConfig } from "../config/types.ts";
import type { ClosedReason } from "../connection/close-reason.ts";
import type { Logger } from "../log/logger.ts";
import type { Runtime } from "../runtime/types.ts";
import { type HandlerLink, perMessageLink, persistentLink } from "./link.ts";
import { type HandlerState, Supervisor } from "./supervisor.ts";

/** How long start-up waits for supervised handlers before going ready without them. */
export const HANDLERS_READY_TIMEOUT_MS = 15_000;

export interface HandlerEntry {
  readonly config: HandlerConfig;
  readonly link: HandlerLink;
  readonly supervisor: Supervisor | undefined;
}

export interface HandlerStatus {
  type: string;
  mode: HandlerConfig["mode"];
  managed: boolean;
  state: HandlerState | "external";
  pid: number | undefined;
  restarts: number;
  lastError: string | undefined;
  inFlight: number;
}

/** The argv that starts a handler: the program, its extra args, its socket and the informer's. */
export function handlerArgv(runtime: Runtime, h: HandlerConfig, informerPath: string | undefined): string[] | undefined {
  const tail = [h.unixDomainSocketPath, ...(informerPath ? [informerPath] : [])];
  if (h.bundled) return [...runtime.selfCommand(), "handler", h.bundled, ...tail];
  if (h.handlerBinary) return [h.handlerBinary, ...h.handlerArgs, ...tail];
  return undefined;
}

/**
 * The folder a handler program runs in: its own, when the config names it by
 * a path, as an original handler expects (one at `handlers/type1` binds
 * `../aSock`, the `aSock` beside the config file); else (a command found on
 * PATH, a bundled handler) the config file's folder; with no file, the
 * gateway's own working folder.
 */
export function handlerCwd(h: HandlerConfig, source: string | null): string | undefined {
  if (h.handlerBinary?.includes("/")) return dirname(h.handlerBinary);
  return source === null ? undefined : dirname(source);
}

export class HandlerHost {
  #entries = new Map<string, HandlerEntry>();

  constructor(
    private readonly runtime: Runtime,
    private config: Config,
    private readonly log: Logger,
    /** Hears every close of a link's connection (for the metrics). */
    private readonly linkClosed?: (reason: ClosedReason) => void,
  ) {
    for (const h of Object.values(config.handlers.typeMap)) this.#entries.set(h.type, this.#makeEntry(h));
  }

  #makeEntry(h: HandlerConfig): HandlerEntry {
    const { runtime, config } = this;
    const informer = config.informer.enabled ? config.informer.path : undefined;
    const cwd = handlerCwd(h, config.source);
    const hlog = this.log.with({ handler: h.type });
    const linkOpts = {
      runtime,
      socketPath: h.unixDomainSocketPath,
      maxFrameBytes: config.limits.maxFrameBytes,
      maxJsonDepth: () => this.config.limits.maxJsonDepth,
      log: hlog,
      closed: this.linkClosed,
    };
    const link = h.mode === "persistent" ? persistentLink({ ...linkOpts, connections: h.connections }) : perMessageLink(linkOpts);
    const argv = handlerArgv(runtime, h, informer);
    const supervisor = argv
      ? new Supervisor({
          runtime,
          type: h.type,
          argv,
          cwd,
          socketPath: h.unixDomainSocketPath,
          log: hlog,
          env: {
            BESTER_HANDLER_TYPE: h.type,
            BESTER_HANDLER_SOCKET: h.unixDomainSocketPath,
            BESTER_INFORMER_SOCKET: informer ?? "",
          },
        })
      : undefined;
    return { config: h, link, supervisor };
  }

  get(type: string): HandlerEntry | undefined {
    return this.#entries.get(type);
  }

  types(): string[] {
    return [...this.#entries.keys()];
  }

  /** Starts every managed handler and waits (bounded) until each is up. */
  async start(): Promise<void> {
    await this.#startEntries([...this.#entries.values()]);
  }

  async #startEntries(entries: HandlerEntry[]): Promise<void> {
    const managed = entries.filter((e) => e.supervisor);
    for (const e of managed) e.supervisor!.start();
    const results = await Promise.all(managed.map((e) => e.supervisor!.waitUp(HANDLERS_READY_TIMEOUT_MS)));
    results.forEach((up, i) => {
      if (!up) {
        const e = managed[i]!;
        this.log.error('handler is not up; its type answers "bad" until it is', {
          handler: e.config.type,
          reason: e.supervisor!.lastError,
        });
      }
    });
  }

  async #stopEntry(e: HandlerEntry, reason: string): Promise<void> {
    e.link.close(reason);
    await e.supervisor?.stop();
  }

  /**
   * Applies a reloaded config: stops handlers that were removed or changed,
   * then starts the added and changed ones. Messages already sent to a
   * stopped handler get "bad"; later ones go to the new handler.
   */
  async apply(config: Config, removed: string[], added: HandlerConfig[]): Promise<void> {
    this.config = config;
    const leaving = removed.map((t) => this.#entries.get(t)).filter((e): e is HandlerEntry => e !== undefined);
    for (const t of removed) this.#entries.delete(t);
    await Promise.allSettled(leaving.map((e) => this.#stopEntry(e, `handler "${e.config.type}" was reconfigured`)));
    const fresh = added.map((h) => this.#makeEntry(h));
    for (const e of fresh) this.#entries.set(e.config.type, e);
    await this.#startEntries(fresh);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#entries.values()].map((e) => this.#stopEntry(e, "the server is shutting down")));
  }

  status(): HandlerStatus[] {
    return [...this.#entries.values()].map((e) => ({
      type: e.config.type,
      mode: e.config.mode,
      managed: e.supervisor !== undefined,
      state: e.supervisor?.state ?? "external",
      pid: e.supervisor?.pid,
      restarts: e.supervisor?.restarts ?? 0,
      lastError: e.supervisor?.lastError,
      inFlight: e.link.inFlight,
    }));
  }
}
