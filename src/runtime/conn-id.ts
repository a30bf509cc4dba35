/**
 * Connection ids: one counter for every transport of the process (sockets
 * and WebSockets alike), so an id names one connection in logs and in the
 * control API whichever listener took it.
 * @module
 */
let next = 1;

export function nextConnId(): number {
  return next++;
}
