/**
 * One HTTP request through the platform's `fetch`, shared by both adapters:
 * they differ only in how `fetch` is told to dial a UNIX socket.
 * @module
 */
import { type Endpoint, formatEndpoint, type HttpAnswer, type HttpRequest } from "./types.ts";

/** The URL a request to `to` names; for a UNIX socket only its path and the Host header matter. */
export function urlFor(to: Endpoint, path: string): string {
  if (to.kind === "unix") return `http://localhost${path}`;
  return to.kind === "tcp6" ? `http://[${to.host}]:${to.port}${path}` : `http://${to.host}:${to.port}${path}`;
}

/**
 * Sends `request` with `fetch` (given the runtime's extra init for the
 * socket) and reads the whole body before the deadline.
 */
export async function fetchAnswer(to: Endpoint, request: HttpRequest, extra: Record<string, unknown>): Promise<HttpAnswer> {
  const signal = AbortSignal.timeout(request.timeoutMs);
  try {
    const response = await fetch(urlFor(to, request.path), {
      method: request.method,
      headers: request.headers,
      body: request.body,
      signal,
      ...extra,
    });
    return { status: response.status, contentType: response.headers.get("content-type"), body: await response.text() };
  } catch (err) {
    const why = signal.aborted ? `no answer within ${request.timeoutMs} ms` : (err as Error).message;
    throw new Error(`${request.method} ${formatEndpoint(to)}${request.path}: ${why}`, { cause: err });
  }
}
