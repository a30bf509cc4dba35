/**
 * Why a handler could not start serving.
 * @module
 */

/**
 * Why {@link serveHandler} could not start.
 *
 * @example
 * ```ts
 * try {
 *   await serveHandler({ socket: "/tmp/h.sock", handle });
 * } catch (err) {
 *   if (err instanceof HandlerStartError && err.code === "in_use") console.error("already running");
 * }
 * ```
 */
export class HandlerStartError extends Error {
  override name = "HandlerStartError";
  constructor(
    /** `in_use`: a live process answers on the path; `not_socket`: the path is some other file. */
    readonly code: "in_use" | "not_socket" | "listen_failed",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
