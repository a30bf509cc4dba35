/**
 * Which browser pages may open a WebSocket to the gateway. A browser sends
 * any site's WebSocket wherever its script says, with the user's network
 * position (a loopback gateway with open accounts included), and always
 * names the page's origin; so the origin is checked before the upgrade.
 * @module
 */

/** Host names that can only mean this machine. */
function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/**
 * Why a WebSocket upgrade is refused, or undefined to take it.
 *
 * - No `Origin`: not a browser (programs send none): taken.
 * - The listener's own pages (the Origin's host is the request's `Host`):
 *   taken. For a listener on a loopback address only under a loopback host
 *   name, so a DNS-rebinding page (a site whose name was pointed at
 *   127.0.0.1) cannot pass as one.
 * - An origin in `allowed` (network.ws.allowedOrigins): taken.
 */
export function originRefusal(origin: string | null, host: string | null, allowed: readonly string[], loopbackListener: boolean): string | undefined {
  if (origin === null) return undefined;
  if (allowed.includes(origin)) return undefined;
  let page: URL | undefined;
  try {
    page = new URL(origin);
  } catch {
    // "null" (a sandboxed or file: page), or no URL at all: never one of ours.
  }
  const shown = JSON.stringify(origin.slice(0, 200));
  if (page !== undefined && host !== null && page.host === host.toLowerCase()) {
    if (!loopbackListener || isLoopbackHost(page.hostname)) return undefined;
    return `origin ${shown} is not allowed: this listener is on loopback, and its own pages are served under localhost, 127.0.0.1 or [::1] only; add the origin to network.ws.allowedOrigins to allow it`;
  }
  return `origin ${shown} is not allowed: not this listener's own pages, and not in network.ws.allowedOrigins`;
}
