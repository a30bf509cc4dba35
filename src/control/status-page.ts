/**
 * The status page (status-page.html) and the headers it is served with.
 *
 * The file is imported as text, which Bun (running the source, and bundled
 * into the compiled binary by `bun build --compile`) and Deno (stable since
 * 2.8, no flag) both support, so the page is inside every form bester ships
 * in, with no build step of its own. @types/bun declares every `*.html`
 * import to be one of Bun's HTML bundles, the import without the `text`
 * attribute; TypeScript 7.0 does not type by the attribute, hence the cast.
 * @module
 */
import { createHash } from "node:crypto";
import page from "./status-page.html" with { type: "text" };

export const STATUS_PAGE_HTML = page as unknown as string;

/** The CSP source for each inline block of `tag`: only the page's own script and style may run. */
function inlineHashes(html: string, tag: "script" | "style"): string {
  const blocks = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
  return blocks.map((b) => `'sha256-${createHash("sha256").update(b).digest("base64")}'`).join(" ");
}

/**
 * The page holds no data, so it is served without the token; the data comes
 * from the API, which asks for it. The policy lets nothing run but the page's
 * own inline script and style, and lets the page talk only to this API.
 */
export const STATUS_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Security-Policy": [
    "default-src 'none'",
    `script-src ${inlineHashes(STATUS_PAGE_HTML, "script")}`,
    `style-src ${inlineHashes(STATUS_PAGE_HTML, "style")}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  // A new version of the gateway brings a new page.
  "Cache-Control": "no-cache",
};
