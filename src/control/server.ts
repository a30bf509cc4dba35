/**
 * Serves the control API for a gateway through the runtime adapter: on its
 * TCP address, or on a UNIX socket that only the gateway's user can open.
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { HttpServer } from "../runtime/types.ts";
import { bindPrivateSocket } from "../runtime/unix-path.ts";
import type { Gateway } from "../server/gateway.ts";
import { createControlApp } from "./app.ts";
import { monitorOf } from "../server/monitor.ts";

/** Starts the control API if the config enables it; `shutdown` is what POST /v1/shutdown does. */
export async function startControlServer(gateway: Gateway, log: Logger, shutdown: () => void): Promise<HttpServer | undefined> {
  const control = gateway.config.control;
  if (!control.enabled) return undefined;
  const token = control.token ?? process.env.BESTER_CONTROL_TOKEN;
  const app = createControlApp(
    monitorOf(gateway),
    {
      reload: () => gateway.reload(),
      disconnect: (username) => gateway.disconnectEverywhere(username, "disconnected by an operator"),
      inject: (type, users, data) => gateway.inject(type, users, data),
      shutdown,
      clearInbox: (username) => gateway.delivery.clear(username),
    },
    { token: token || undefined },
  );
  const { runtime } = gateway;
  const auth = token ? "bearer token" : control.socket !== undefined ? "socket file mode 0600" : "none (loopback)";
  if (control.socket !== undefined) {
    const path = control.socket;
    const socket = await bindPrivateSocket(
      path,
      (at) => runtime.serveHttp({ kind: "unix", path: at }, app.fetch),
      () => log.warn("control socket bound in place: its directory's path is too long for a private staging directory", { path }),
    );
    log.info("control API listening", { address: `unix:${path}`, auth });
    return {
      address: { kind: "unix", path },
      async close(force?: boolean) {
        await socket.server.close(force);
        await socket.remove();
      },
    };
  }
  const kind = control.address.includes(":") ? "tcp6" : "tcp4";
  const server = await runtime.serveHttp({ kind, host: control.address, port: control.port }, app.fetch);
  const a = server.address as { host: string; port: number };
  const url = kind === "tcp6" ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
  log.info("control API listening", { address: url, auth });
  return server;
}
