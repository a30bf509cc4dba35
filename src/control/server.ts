/**
 * Serves the control API for a gateway through the runtime adapter.
 * @module
 */
import type { Logger } from "../log/logger.ts";
import type { HttpServer } from "../runtime/types.ts";
import type { Gateway } from "../server/gateway.ts";
import { createControlApp } from "./app.ts";
import { gatewayView } from "./gateway-view.ts";

/** Starts the control API if the config enables it; `shutdown` is what POST /v1/shutdown does. */
export async function startControlServer(gateway: Gateway, log: Logger, shutdown: () => void): Promise<HttpServer | undefined> {
  const control = gateway.config.control;
  if (!control.enabled) return undefined;
  const token = control.token ?? process.env.BESTER_CONTROL_TOKEN;
  const app = createControlApp(
    gatewayView(gateway),
    {
      reload: () => gateway.reload(),
      disconnect: (username) => gateway.disconnect(username, "disconnected by an operator"),
      inject: (type, users, data) => gateway.inject(type, users, data),
      shutdown,
    },
    { token: token || undefined },
  );
  const kind = control.address.includes(":") ? "tcp6" : "tcp4";
  const server = await gateway.runtime.serveHttp({ kind, host: control.address, port: control.port }, app.fetch);
  const a = server.address as { host: string; port: number };
  const url = kind === "tcp6" ? `http://[${a.host}]:${a.port}` : `http://${a.host}:${a.port}`;
  log.info("control API listening", { address: url, auth: token ? "bearer token" : "none (loopback)" });
  return server;
}
