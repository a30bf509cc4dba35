/**
 * What the WebSocket listener's port serves besides upgrades: the web chat
 * page (`/chat`) and the browser build of the client SDK
 * (`/bester-client.js`), both inside every form bester ships in.
 *
 * Both files are imported as text, which Bun (running the source, and
 * bundled into the compiled binary) and Deno both support, as the status
 * page is (control/status-page.ts); the SDK's bundle is made by
 * build/browser-client.ts and committed, so the source needs no build step.
 * @module
 */
import page from "./chat-page.html" with { type: "text" };
import client from "./bester-client.js" with { type: "text" };
import { pageHeaders } from "./page-headers.ts";

export const CHAT_PAGE_HTML = page as unknown as string;
export const BROWSER_CLIENT_JS = client as unknown as string;

/** Where the page finds the WebSocket path: the listener's, written in when it is served. */
const PATH_META = '<meta name="bester-websocket-path" content="/bester">';

/**
 * Only the page's own script (and the SDK from the same origin) may run, and
 * it may talk only to this origin: its WebSocket included.
 */
const PAGE_HEADERS = pageHeaders(CHAT_PAGE_HTML, { sameOriginScripts: true });

const SCRIPT_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/javascript; charset=utf-8",
  "X-Content-Type-Options": "nosniff",
  // Pages of other origins may load it (a module script is fetched with CORS).
  "Access-Control-Allow-Origin": "*",
  "Cache-Control": "no-cache",
};

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

function escapeAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The HTTP side of the WebSocket listener whose upgrade path is `wsPath`. */
export function webPages(wsPath: string): (request: Request) => Response {
  const html = CHAT_PAGE_HTML.replace(PATH_META, `<meta name="bester-websocket-path" content="${escapeAttribute(wsPath)}">`);
  return (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("only GET and HEAD here\n", { status: 405, headers: { ...TEXT, Allow: "GET, HEAD" } });
    }
    if (pathname === "/chat") return new Response(html, { headers: PAGE_HEADERS });
    if (pathname === "/bester-client.js") return new Response(BROWSER_CLIENT_JS, { headers: SCRIPT_HEADERS });
    if (pathname === "/") return new Response(null, { status: 302, headers: { Location: "/chat" } });
    return new Response(`not found: ${pathname.slice(0, 200)}; the web chat is at /chat, WebSockets at ${wsPath}\n`, { status: 404, headers: TEXT });
  };
}
