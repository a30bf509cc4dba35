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
import { pageHeaders } from "../web/page-headers.ts";
import page from "./status-page.html" with { type: "text" };

export const STATUS_PAGE_HTML = page as unknown as string;

/**
 * The page holds no data, so it is served without the token; the data comes
 * from the API, which asks for it. The policy lets nothing run but the page's
 * own inline script and style, and lets the page talk only to this API.
 */
export const STATUS_PAGE_HEADERS = pageHeaders(STATUS_PAGE_HTML);
