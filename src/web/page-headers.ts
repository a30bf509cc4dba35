/**
 * The headers bester's own pages are served with (the web chat, the status
 * page): a policy under which nothing runs but the page's own inline script
 * and style (and, where asked, scripts of its own origin), and the page
 * talks only to its own origin.
 * @module
 */
import { createHash } from "node:crypto";

/** The CSP sources of every inline block of `tag` in `html`. */
function inlineHashes(html: string, tag: "script" | "style"): string {
  const blocks = [...html.matchAll(new RegExp(`<${tag}(?: type="module")?>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
  return blocks.map((b) => `'sha256-${createHash("sha256").update(b).digest("base64")}'`).join(" ");
}

/** `sameOriginScripts`: the page may also load scripts from its own origin (the chat loads the SDK). */
export function pageHeaders(html: string, options: { sameOriginScripts?: boolean } = {}): Readonly<Record<string, string>> {
  return {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": [
      "default-src 'none'",
      `script-src ${options.sameOriginScripts ? "'self' " : ""}${inlineHashes(html, "script")}`,
      `style-src ${inlineHashes(html, "style")}`,
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
}
