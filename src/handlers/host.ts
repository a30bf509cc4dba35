/**
 * The handler host: for every configured type, the link that carries requests
 * to it and, when the config names a program, the supervisor that runs it.
 * @module
 */
import { dirname } from "node:path";
import type { Config, HandlerConfig } from "../config/schema.ts";
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

export class HandlerHost {
  #entries = new Map<string, HandlerEntry>();

  constructor(
    runtime: Runtime,
    config: Config,
    private readonly log: Logger,
  ) {
    const informer = config.informer.enabled ? config.informer.path : undefined;
    const cwd = config.source ? dirname(config.source) : undefined;
    for (const h of Object.values(config.handlers.typeMap)) {
      const hlog = log.with({ handler: h.type });
      const linkOpts = { runtime, socketPath: h.unixDomainSocketPath, maxFrameBytes: config.limits.maxFrameBytes, log: hlog };
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
      this.#entries.set(h.type, { config: h, link, supervisor });
    }
  }

  get(type: string): HandlerEntry | undefined {
    return this.#entries.get(type);
  }

  types(): string[] {
    return [...this.#entries.keys()];
  }

  /** Starts every managed handler and waits (bounded) until each is up. */
  async start(): Promise<void> {
    const managed = [...this.#entries.values()].filter((e) => e.supervisor);
    for (const e of managed) e.supervisor!.start();
    const results = await Promise.all(managed.map((e) => e.supervisor!.waitUp(HANDLERS_READY_TIMEOUT_MS)));
    results.forEach((up, i) => {
      if (!up) {
        const e = managed[i]!;
        this.log.error("handler is not up; its type answers \"bad\" until it is", {
          handler: e.config.type,
          reason: e.supervisor!.lastError,
        });
      }
    });
  }

  async stop(): Promise<void> {
    for (const e of this.#entries.values()) e.link.close("the server is shutting down");
    await Promise.allSettled([...this.#entries.values()].map((e) => e.supervisor?.stop()));
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
