/** closeKindOf: what a peer is told of a close (a WebSocket's close code, PROTOCOL.md §10). */
import { expect, test } from "bun:test";
import { ClosedReason, closeKindOf } from "../../src/connection/close-reason.ts";

test("a fatal error is a broken rule, a frame over the limit too big, a shutdown going away, the rest normal", () => {
  expect(closeKindOf(ClosedReason.frameError, "frame_too_large: frame 2 declares 5000 bytes, the limit is 4096")).toBe("too_big");
  expect(closeKindOf(ClosedReason.frameError, "invalid_json: frame 1 is not JSON")).toBe("policy");
  for (const reason of [ClosedReason.malformed, ClosedReason.badScope, ClosedReason.authFailed, ClosedReason.authTimeout, ClosedReason.tooManyConnections, ClosedReason.operator]) {
    expect(closeKindOf(reason, undefined)).toBe("policy");
  }
  expect(closeKindOf(ClosedReason.shutdown, "shutting_down: the server is shutting down")).toBe("going_away");
  for (const reason of [ClosedReason.clientRequested, ClosedReason.serverMessageDone, ClosedReason.peerClosed, undefined]) {
    expect(closeKindOf(reason, undefined)).toBe("normal");
  }
});
