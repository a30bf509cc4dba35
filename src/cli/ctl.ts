/**
 * `bester ctl`: the control API of a running gateway from the command line,
 * found from the config file it runs with, so an operator never needs to
 * remember a port or a socket path.
 * @module
 */
import { DEFAULT_CONTROL_ADDRESS, DEFAULT_CONTROL_PORT } from "../config/defaults.ts";
import { parseServerAddress } from "../config/server-address.ts";
import type { ClientInfo, ClusterInfo, ListenerInfo, Readiness } from "../control/types.ts";
import type { HandlerStatus } from "../handlers/host.ts";
import { type Endpoint, formatEndpoint, type HttpAnswer, type Runtime } from "../runtime/types.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { resolveConfig } from "./config-source.ts";
import { formatTable } from "./table.ts";

/** Exit codes: what happened, for scripts. */
export const CtlExit = {
  done: 0,
  /** The gateway answered and said no (invalid reload, unknown user, not ready, wrong token). */
  refused: 1,
  usage: 2,
  /** Nothing answers at the control address. */
  unreachable: 3,
} as const;

const DEFAULT_TIMEOUT_MS = 5000;
/** How long `shutdown --wait` waits for the gateway to stop answering. */
const SHUTDOWN_WAIT_MS = 30_000;
const POLL_MS = 100;

export const CTL_HELP = `Usage: bester ctl COMMAND [ARGS] [--config FILE | --control ADDRESS] [options]

Talks to the control API of a running gateway.

Commands:
  status              version, uptime, readiness (and why not), listeners,
                      clients and handlers at a glance; exit 1 if not ready
  clients             connected users and each of their sessions; in a
                      cluster, every node's users (others' as session counts)
  cluster             the nodes of the cluster: last heartbeat, sessions
  handlers            handlers: mode, state, pid, restarts, in flight, last error
  reload              the gateway re-reads its config file; prints what changed
  disconnect USER     closes every session of USER (on every node of a cluster)
  shutdown [--wait]   stops the gateway gracefully; --wait returns once it
                      no longer answers (at most ${SHUTDOWN_WAIT_MS / 1000} s)

Where the gateway is (default: the embedded default's ${DEFAULT_CONTROL_ADDRESS}:${DEFAULT_CONTROL_PORT}):
  -c, --config FILE     the config file the gateway was started with: its
                        control socket, or control.address and control.port
      --control ADDR    http://HOST:PORT, HOST:PORT, [IPV6]:PORT or unix:PATH

Options:
      --json            print the API's JSON answer as it is
      --timeout MS      how long to wait for an answer (default ${DEFAULT_TIMEOUT_MS})
  -h, --help            show this help

Environment:
  BESTER_CONTROL_TOKEN  the bearer token, when the config file gives none

Exit status: 0 done; 1 the gateway said no (reload refused, user not
connected, not ready, wrong token); 2 usage; 3 no gateway answers there.`;

const COMMANDS = ["status", "clients", "cluster", "handlers", "reload", "disconnect", "shutdown"] as const;
type Command = (typeof COMMANDS)[number];

/** Where to reach the control API and with which token. */
interface Target {
  to: Endpoint;
  token: string | undefined;
}

class Unreachable extends Error {}

export async function ctlCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "ctl",
    argv,
    {
      config: { type: "string", short: "c" },
      control: { type: "string" },
      json: { type: "boolean" },
      timeout: { type: "string" },
      wait: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    2,
  );
  if (values.help) {
    console.log(CTL_HELP);
    return CtlExit.done;
  }
  const [name, argument] = positionals;
  if (name === undefined) throw new UsageError("ctl", `a command is needed: ${COMMANDS.join(", ")}`);
  if (!(COMMANDS as readonly string[]).includes(name)) {
    throw new UsageError("ctl", `unknown command '${name}'; known: ${COMMANDS.join(", ")}`);
  }
  const command = name as Command;
  if (command === "disconnect" && argument === undefined) throw new UsageError("ctl", "disconnect needs a USER");
  if (command !== "disconnect" && argument !== undefined) throw new UsageError("ctl", `unexpected argument '${argument}'`);
  if (values.wait && command !== "shutdown") throw new UsageError("ctl", "--wait goes with shutdown only");
  const timeoutMs = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError("ctl", `--timeout must be a positive whole number of ms, got '${values.timeout}'`);

  const target = await targetOf(values.config, values.control);
  if (typeof target === "number") return target;
  const api = new ControlClient(runtime, target, timeoutMs);
  try {
    switch (command) {
      case "status":
        return await status(api, values.json === true);
      case "clients":
        return await clients(api, values.json === true);
      case "cluster":
        return await cluster(api, values.json === true);
      case "handlers":
        return await handlers(api, values.json === true);
      case "reload":
        return await reload(api, values.json === true);
      case "disconnect":
        return await disconnect(api, argument!, values.json === true);
      case "shutdown":
        return await shutdown(api, values.json === true, values.wait === true);
    }
  } catch (err) {
    if (!(err instanceof Unreachable)) throw err;
    console.error(`bester ctl: ${err.message}`);
    return CtlExit.unreachable;
  }
}

/** The control address and token from --control, or from the config file, or the embedded default's. */
async function targetOf(configPath: string | undefined, control: string | undefined): Promise<Target | number> {
  const envToken = process.env.BESTER_CONTROL_TOKEN || undefined;
  if (configPath !== undefined && control !== undefined) throw new UsageError("ctl", "give --config or --control, not both");
  if (control !== undefined) return { to: parseControlAddress(control), token: envToken };
  if (configPath === undefined) {
    return { to: { kind: "tcp4", host: DEFAULT_CONTROL_ADDRESS, port: DEFAULT_CONTROL_PORT }, token: envToken };
  }
  const outcome = await resolveConfig(configPath);
  if (!outcome.ok) {
    for (const line of outcome.lines) console.error(line);
    return CtlExit.usage;
  }
  const c = outcome.config.control;
  if (!c.enabled) {
    console.error(`bester ctl: ${configPath} turns the control API off (control.enabled is false)`);
    return CtlExit.usage;
  }
  const token = c.token ?? envToken;
  if (c.socket !== undefined) return { to: { kind: "unix", path: c.socket }, token };
  // A gateway listening on every address is reached on loopback.
  const host = c.address === "0.0.0.0" ? "127.0.0.1" : c.address === "::" ? "::1" : c.address;
  return { to: { kind: host.includes(":") ? "tcp6" : "tcp4", host, port: c.port }, token };
}

/** `http://HOST:PORT`, `HOST:PORT`, `[IPV6]:PORT` or `unix:PATH`. */
export function parseControlAddress(text: string): Endpoint {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path === "") throw new UsageError("ctl", "--control unix: needs a socket path");
    return { kind: "unix", path };
  }
  if (text.startsWith("https://")) throw new UsageError("ctl", "the control API speaks plain HTTP (on loopback or a private socket), not https");
  const address = parseServerAddress(text.replace(/^http:\/\//, "").replace(/\/$/, ""));
  if (address === undefined) {
    throw new UsageError("ctl", `--control must be http://HOST:PORT, HOST:PORT, [IPV6]:PORT or unix:PATH, got '${text}'`);
  }
  return { kind: address.ipv6 ? "tcp6" : "tcp4", host: address.host, port: address.port };
}

/** The control API's JSON answers, or why there is none. */
class ControlClient {
  constructor(
    private readonly runtime: Runtime,
    private readonly target: Target,
    private readonly timeoutMs: number,
  ) {}

  get where(): string {
    return formatEndpoint(this.target.to);
  }

  async call(method: "GET" | "POST", path: string): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = this.target.token ? { authorization: `Bearer ${this.target.token}` } : {};
    let answer: HttpAnswer;
    try {
      answer = await this.runtime.httpRequest(this.target.to, { method, path, headers, timeoutMs: this.timeoutMs });
    } catch (err) {
      const cause = (err as Error).cause as Error | undefined;
      throw new Unreachable(`no gateway answers at ${this.where} (${cause?.message ?? (err as Error).message})`);
    }
    let body: unknown;
    try {
      body = JSON.parse(answer.body);
    } catch {
      throw new Unreachable(`what answers at ${this.where} is not a bester control API (HTTP ${answer.status}, not JSON)`);
    }
    return { status: answer.status, body };
  }

  /** A GET that must succeed; a refusal is printed and becomes the exit code. */
  async get<T>(path: string): Promise<T | number> {
    const r = await this.call("GET", path);
    if (r.status === 200) return r.body as T;
    return refused(r);
  }
}

/** Prints the API's error and returns the exit code for it. */
function refused(r: { status: number; body: any }): number {
  const e = r.body?.error;
  if (r.status === 401) {
    console.error("bester ctl: the gateway wants a token: set BESTER_CONTROL_TOKEN, or control.token in the config file");
  } else {
    console.error(`bester ctl: ${e?.message ?? `HTTP ${r.status}`}${e?.code ? ` (${e.code})` : ""}`);
  }
  for (const detail of Array.isArray(e?.details) ? e.details : []) console.error(`  ${detail}`);
  return CtlExit.refused;
}

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

function uptime(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return d > 0 ? `${d}d${h}h${m}m` : h > 0 ? `${h}h${m}m${s}s` : m > 0 ? `${m}m${s}s` : `${s}s`;
}

async function status(api: ControlClient, json: boolean): Promise<number> {
  const health = await api.get<{ version: string; runtime: string; uptimeSeconds: number }>("/health");
  if (typeof health === "number") return health;
  const ready = await api.call("GET", "/ready");
  if (ready.status !== 200 && ready.status !== 503) return refused(ready);
  const readiness = ready.body as Readiness;
  const listeners = await api.get<{ listeners: ListenerInfo[] }>("/v1/listeners");
  if (typeof listeners === "number") return listeners;
  const clientList = await api.get<{ clients: ClientInfo[] }>("/v1/clients");
  if (typeof clientList === "number") return clientList;
  const handlerList = await api.get<{ handlers: HandlerStatus[] }>("/v1/handlers");
  if (typeof handlerList === "number") return handlerList;
  const code = readiness.ready ? CtlExit.done : CtlExit.refused;
  if (json) {
    print({ ...health, ...readiness, listeners: listeners.listeners, clients: clientList.clients, handlers: handlerList.handlers });
    return code;
  }
  const sessions = clientList.clients.reduce((n, c) => n + c.sessions.length, 0);
  const up = handlerList.handlers.filter((h) => h.state === "up" || h.state === "external").length;
  const rows = [
    ["gateway", `bester ${health.version} (${health.runtime}) at ${api.where}, up ${uptime(health.uptimeSeconds)}`],
    ["ready", readiness.ready ? "yes" : `no: ${readiness.reasons.join("; ")}`],
    ["listeners", listeners.listeners.map((l) => `${l.kind === "unix" ? "" : `${l.kind} `}${l.address}${l.tls ? " (tls)" : ""}`).join(", ") || "none"],
    ["clients", `${clientList.clients.length} user${clientList.clients.length === 1 ? "" : "s"}, ${sessions} session${sessions === 1 ? "" : "s"}`],
    ["handlers", `${handlerList.handlers.length} (${up} up)`],
  ];
  for (const [key, value] of rows) console.log(`${key!.padEnd(10)} ${value}`);
  return code;
}

async function clients(api: ControlClient, json: boolean): Promise<number> {
  const list = await api.get<{ clients: ClientInfo[] }>("/v1/clients");
  if (typeof list === "number") return list;
  if (json) {
    print(list);
    return CtlExit.done;
  }
  if (list.clients.length === 0) {
    console.log("no clients connected");
    return CtlExit.done;
  }
  const inCluster = list.clients.some((c) => c.nodes !== undefined);
  let here = "";
  if (inCluster) {
    const info = await api.get<ClusterInfo>("/v1/cluster");
    if (typeof info === "number") return info;
    here = info.node;
  }
  const rows = list.clients.flatMap((c) => [
    ...c.sessions.map((s) => [
      c.username,
      ...(inCluster ? [here] : []),
      String(s.connection),
      s.listener,
      s.remote,
      s.connectedAt,
      String(s.messagesIn),
      String(s.inFlight),
      String(s.pendingBytes),
    ]),
    // Another node's sessions: only their count is known here.
    ...(c.nodes ?? [])
      .filter((n) => n.node !== here)
      .map((n) => [c.username, n.node, `${n.sessions} session${n.sessions === 1 ? "" : "s"}`, "-", "-", "-", "-", "-", "-"]),
  ]);
  const head = ["USER", ...(inCluster ? ["NODE"] : []), "CONN", "LISTENER", "REMOTE", "CONNECTED", "IN", "IN FLIGHT", "PENDING"];
  console.log(formatTable(head, rows, inCluster ? [2, 6, 7, 8] : [1, 5, 6, 7]));
  return CtlExit.done;
}

async function cluster(api: ControlClient, json: boolean): Promise<number> {
  const info = await api.get<ClusterInfo>("/v1/cluster");
  if (typeof info === "number") return info;
  if (json) {
    print(info);
    return CtlExit.done;
  }
  console.log(`node ${info.node}: ${info.ready ? "ready" : `not ready: ${info.detail}`}`);
  const rows = info.nodes.map((n) => [
    n.node + (n.self ? " *" : ""),
    n.lastHeartbeat,
    `${Math.round(n.silentMs)} ms`,
    String(n.sessions ?? "-"),
    String(n.users ?? "-"),
    n.started ?? "-",
  ]);
  console.log(formatTable(["NODE", "LAST HEARTBEAT", "SILENT", "SESSIONS", "USERS", "STARTED"], rows, [3, 4]));
  return CtlExit.done;
}

async function handlers(api: ControlClient, json: boolean): Promise<number> {
  const list = await api.get<{ handlers: HandlerStatus[] }>("/v1/handlers");
  if (typeof list === "number") return list;
  if (json) {
    print(list);
    return CtlExit.done;
  }
  if (list.handlers.length === 0) {
    console.log("no handlers configured");
    return CtlExit.done;
  }
  const rows = list.handlers.map((h) => [
    h.type,
    h.mode,
    h.managed ? "yes" : "no",
    h.state,
    h.pid === undefined ? "-" : String(h.pid),
    String(h.restarts),
    String(h.inFlight),
    h.lastError ?? "-",
  ]);
  console.log(formatTable(["TYPE", "MODE", "MANAGED", "STATE", "PID", "RESTARTS", "IN FLIGHT", "LAST ERROR"], rows, [4, 5, 6]));
  return CtlExit.done;
}

async function reload(api: ControlClient, json: boolean): Promise<number> {
  const r = await api.call("POST", "/v1/reload");
  if (json) print(r.body);
  if (r.status !== 200) return json ? CtlExit.refused : refusedReload(r);
  if (!json) {
    const changes: string[] = r.body.changes ?? [];
    console.log(changes.length === 0 ? "reloaded: nothing changed" : `reloaded: ${changes.length} change${changes.length === 1 ? "" : "s"}`);
    for (const change of changes) console.log(`  ${change}`);
    for (const warning of r.body.warnings ?? []) console.error(`warning: ${warning}`);
  }
  return CtlExit.done;
}

function refusedReload(r: { status: number; body: any }): number {
  if (r.status !== 422) return refused(r);
  console.error("bester ctl: reload refused; the gateway runs unchanged:");
  for (const error of r.body.error?.details ?? []) console.error(`  ${error}`);
  for (const warning of r.body.warnings ?? []) console.error(`warning: ${warning}`);
  return CtlExit.refused;
}

async function disconnect(api: ControlClient, username: string, json: boolean): Promise<number> {
  const r = await api.call("POST", `/v1/clients/${encodeURIComponent(username)}/disconnect`);
  if (r.status !== 200) {
    if (json) print(r.body);
    return refused(r);
  }
  if (json) print(r.body);
  else console.log(`disconnected ${r.body.disconnected} session${r.body.disconnected === 1 ? "" : "s"} of ${username}`);
  return CtlExit.done;
}

async function shutdown(api: ControlClient, json: boolean, wait: boolean): Promise<number> {
  const r = await api.call("POST", "/v1/shutdown");
  if (r.status !== 202) return refused(r);
  if (json) print(r.body);
  else console.log("shutting down");
  if (!wait) return CtlExit.done;
  const deadline = Date.now() + SHUTDOWN_WAIT_MS;
  while (Date.now() < deadline) {
    try {
      await api.call("GET", "/health");
    } catch (err) {
      if (!(err instanceof Unreachable)) throw err;
      if (!json) console.log("stopped");
      return CtlExit.done;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  console.error(`bester ctl: the gateway at ${api.where} still answers after ${SHUTDOWN_WAIT_MS / 1000} s`);
  return CtlExit.refused;
}
