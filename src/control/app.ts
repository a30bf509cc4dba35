/**
 * The HTTP control API: a Hono app made from a read-only view of the gateway
 * and the actions it allows. It knows nothing of sockets or runtimes; the
 * gateway serves its `fetch` through the runtime adapter.
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import * as v from "valibot";
import { renderMetrics } from "./metrics.ts";
import { STATUS_PAGE_HEADERS, STATUS_PAGE_HTML } from "./status-page.ts";
import { type ControlActions, type ControlView, CONTROL_MESSAGE_TYPE } from "./types.ts";

export interface ControlOptions {
  /** Bearer token; when set, every endpoint but /health and the status page (which holds no data) requires it. */
  token?: string;
}

/** Every error the API returns has this shape. */
function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

function tokenMatches(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  // timingSafeEqual needs equal lengths; compare against itself to spend the same time.
  return a.length === b.length ? timingSafeEqual(a, b) : (timingSafeEqual(b, b), false);
}

const usernames = v.pipe(
  v.union([v.string(), v.array(v.string())], "expected a username or a list of usernames"),
  v.transform((x) => (typeof x === "string" ? [x] : x)),
  v.check((x) => x.length > 0 && x.every((u) => u.trim() !== ""), "expected at least one non-empty username"),
);

/** POST /v1/messages: deliver as if a handler of `type` had answered sendClients. */
const MessageBody = v.object({
  to: usernames,
  data: v.optional(v.unknown(), null),
  type: v.optional(v.pipe(v.string("expected a string"), v.nonEmpty("expected a non-empty string")), CONTROL_MESSAGE_TYPE),
});

function describeIssues(issues: v.BaseIssue<unknown>[]): string {
  return issues.map((i) => `${v.getDotPath(i) ?? "body"}: ${i.message}`).join("; ");
}

/**
 * Why an action (any method but GET and HEAD) is refused as coming from another
 * site's page, or undefined. A browser sends another site's form or no-cors
 * fetch to the API without asking, and without a token (loopback) the API
 * would carry it out; reading needs no such check, since the API allows no
 * other origin to read its answers. Programs send neither header, and the
 * status page's own requests are same-origin.
 */
function crossSiteAction(method: string, url: string, origin: string | undefined, fetchSite: string | undefined): string | undefined {
  if (method === "GET" || method === "HEAD") return undefined;
  if (fetchSite === "cross-site" || fetchSite === "same-site") return `the browser says it comes from another site (Sec-Fetch-Site: ${fetchSite})`;
  if (origin !== undefined && origin !== new URL(url).origin) return `it comes from a page of ${JSON.stringify(origin.slice(0, 200))}`;
  return undefined;
}

export function createControlApp(view: ControlView, actions: ControlActions, options: ControlOptions = {}) {
  const app = new Hono();

  app.use("*", async (c, next) => {
    const crossSite = crossSiteAction(c.req.method, c.req.url, c.req.header("origin"), c.req.header("sec-fetch-site"));
    if (crossSite !== undefined) {
      return c.json(errorBody("cross_site", `refused: ${crossSite}; the control API takes actions from programs and its own page only`), 403);
    }
    if (!options.token || c.req.path === "/health" || c.req.path === "/") return next();
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (!tokenMatches(given, options.token)) {
      c.header("WWW-Authenticate", 'Bearer realm="bester"');
      return c.json(errorBody("unauthorized", "missing or wrong bearer token"), 401);
    }
    return next();
  });

  app.get("/", (c) => c.body(STATUS_PAGE_HTML, 200, STATUS_PAGE_HEADERS));

  app.get("/health", (c) => c.json(view.health()));

  app.get("/ready", (c) => {
    const r = view.readiness();
    return c.json(r, r.ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    c.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(renderMetrics(await view.metrics()));
  });

  app.get("/v1/listeners", (c) => c.json({ listeners: view.listeners() }));
  app.get("/v1/clients", async (c) => c.json({ clients: await view.clients() }));
  app.get("/v1/cluster", async (c) => {
    const info = await view.cluster();
    if (info === undefined) return c.json(errorBody("not_found", "this gateway is no node of a cluster (cluster.enabled is false)"), 404);
    return c.json(info);
  });
  app.get("/v1/handlers", (c) => c.json({ handlers: view.handlers() }));
  app.get("/v1/peers", (c) => c.json(view.peers()));
  app.get("/v1/rates", (c) => c.json(view.rates()));

  app.get("/v1/inboxes", async (c) => {
    const info = await view.inboxes();
    if (info.store === "none") return c.json(errorBody("not_found", "this gateway keeps no messages (delivery.store is none)"), 404);
    return c.json(info);
  });

  app.get("/v1/users/:username/inbox", async (c) => {
    const username = c.req.param("username");
    const info = await view.inbox(username);
    if (info === undefined) return c.json(errorBody("not_found", `no inbox for ${JSON.stringify(username)}: never logged in or sent a message, or this gateway keeps none`), 404);
    return c.json(info);
  });

  app.delete("/v1/users/:username/inbox", async (c) => {
    const username = c.req.param("username");
    if ((await view.inbox(username)) === undefined) {
      return c.json(errorBody("not_found", `no inbox for ${JSON.stringify(username)}`), 404);
    }
    return c.json({ username, removed: await actions.clearInbox(username) });
  });

  app.post("/v1/reload", async (c) => {
    const result = await actions.reload();
    if (result.ok) return c.json(result);
    return c.json(
      { ...errorBody("reload_failed", "the config was not applied; the gateway runs unchanged", result.errors), warnings: result.warnings },
      422,
    );
  });

  app.post("/v1/clients/:username/disconnect", async (c) => {
    const username = c.req.param("username");
    const n = await actions.disconnect(username);
    if (n === 0) return c.json(errorBody("not_connected", `no client named ${JSON.stringify(username)} is connected`), 404);
    return c.json({ username, disconnected: n });
  });

  app.post("/v1/messages", async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return c.json(errorBody("invalid_json", "the request body is not valid JSON"), 400);
    }
    const parsed = v.safeParse(MessageBody, body);
    if (!parsed.success) return c.json(errorBody("invalid_request", describeIssues(parsed.issues)), 400);
    const { to, data, type } = parsed.output;
    return c.json({ type, ...(await actions.inject(type, to, data)) });
  });

  app.post("/v1/shutdown", (c) => {
    // After the response has gone out.
    setTimeout(() => actions.shutdown(), 10);
    return c.json({ status: "shutting down" }, 202);
  });

  app.notFound((c) => c.json(errorBody("not_found", `no endpoint ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => c.json(errorBody("internal_error", err.message), 500));
  return app;
}
