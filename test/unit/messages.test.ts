import { describe, test, expect } from "bun:test";
import fc from "fast-check";
import {
  _parseClientPayloadBySchema,
  _parseHandlerResponseBySchema,
  parseBuiltinCommand,
  parseClientPayload,
  parseFirstFrame,
  parseHandlerResponse,
} from "../../src/protocol/messages.ts";
import {
  dummyReply,
  ErrorCodes,
  fatalMessage,
  GOOD_REPORT_HEAD,
  GOOD_REPORT_TAIL,
  receivedMessage,
  receivedMessageJson,
  deliveryParts,
  statusReport,
} from "../../src/protocol/reports.ts";
import type { FrameErrorCode } from "../../src/protocol/frame.ts";

const client = (authentication: unknown, extra: Record<string, unknown> = {}) => ({
  header: { scope: "client", authentication },
  ...extra,
});

function problemOf(result: { ok: true } | { ok: false; problem: { code: string; message: string } }) {
  if (result.ok) throw new Error("expected a problem, got ok");
  return result.problem;
}

describe("reports", () => {
  test("status reports, with and without an error", () => {
    expect(statusReport("m-1", "good")).toEqual({
      header: { status: "good", messageType: "statusReport" },
      payload: { id: "m-1" },
    });
    expect(JSON.stringify(statusReport("m-1", "good"))).not.toContain("error");
    expect(statusReport("m-2", "bad", { code: ErrorCodes.unknownType, message: "no handler for chat" })).toEqual({
      header: {
        status: "bad",
        messageType: "statusReport",
        error: { code: "unknown_type", message: "no handler for chat" },
      },
      payload: { id: "m-2" },
    });
  });

  test("fatal message carries the error and the id or null", () => {
    expect(fatalMessage({ code: "bad_scope", message: "x" }, null)).toEqual({
      header: { status: "bad", messageType: "fatal", error: { code: "bad_scope", message: "x" } },
      payload: { id: null },
    });
    expect(fatalMessage({ code: "malformed_message", message: "y" }, "m-3").payload.id).toBe("m-3");
  });

  test("an Error passed as ErrorInfo keeps its message on the wire", () => {
    const err = Object.assign(new Error("frame 1 declares 9 bytes"), { code: "frame_too_large" });
    const wire = JSON.parse(JSON.stringify(fatalMessage(err, null)));
    expect(wire.header.error).toEqual({ code: "frame_too_large", message: "frame 1 declares 9 bytes" });
  });

  test("the text-built good report (the parts a session writes) and delivery equal JSON.stringify of their objects", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.option(fc.jsonValue(), { nil: undefined }), (id, type, data) => {
        expect(GOOD_REPORT_HEAD + JSON.stringify(id) + GOOD_REPORT_TAIL).toBe(JSON.stringify(statusReport(id, "good")));
        expect(receivedMessageJson(type, JSON.stringify(data))).toBe(JSON.stringify(receivedMessage(type, data)));
      }),
      { numRuns: 500 },
    );
  });

  test("a delivery with a seq (PROTOCOL.md §9) is the same frame with header.seq", () => {
    fc.assert(
      fc.property(fc.string(), fc.option(fc.jsonValue(), { nil: undefined }), fc.integer({ min: 1, max: 2 ** 53 - 1 }), (type, data, seq) => {
        const expected = receivedMessage(type, data) as { header: Record<string, unknown> };
        expected.header.seq = seq;
        expect(deliveryParts(type, JSON.stringify(data), seq).join("")).toBe(JSON.stringify(expected));
      }),
      { numRuns: 500 },
    );
  });

  test("dummy reply and received message, exactly as the original", () => {
    expect(JSON.stringify(dummyReply("p"))).toBe('{"header":{"status":"0"},"payload":{"data":null,"type":"dummy","id":"p"}}');
    expect(JSON.stringify(receivedMessage("chat", { t: 1 }))).toBe(
      '{"header":{"messageType":"receivedMessage"},"payload":{"data":{"t":1},"type":"chat"}}',
    );
  });

  test("frame error codes are wire error codes", () => {
    const frameCodes: Record<FrameErrorCode, true> = { frame_too_large: true, invalid_utf8: true, invalid_json: true, too_deep: true };
    const wire = new Set<string>(Object.values(ErrorCodes));
    for (const code of Object.keys(frameCodes)) expect(wire.has(code)).toBe(true);
    expect(wire.size).toBe(Object.keys(ErrorCodes).length);
  });
});

describe("parseFirstFrame", () => {
  test("client with credentials; username trimmed, password kept as sent", () => {
    expect(parseFirstFrame(client({ username: "  alice\t", password: " pw " }))).toEqual({
      ok: true,
      frame: { scope: "client", credentials: { username: "alice", password: " pw " }, ack: false },
    });
  });

  test("client payload on the first frame is optional, and parsed when present", () => {
    const auth = { username: "a", password: "p" };
    expect(parseFirstFrame(client(auth, { payload: null }))).toEqual({
      ok: true,
      frame: { scope: "client", credentials: { username: "a", password: "p" }, ack: false },
    });
    expect(parseFirstFrame(client(auth, { payload: { type: "chat", id: "1", data: [1] } }))).toEqual({
      ok: true,
      frame: { scope: "client", credentials: { username: "a", password: "p" }, ack: false, payload: { type: "chat", id: "1", data: [1] } },
    });
  });

  test("header.delivery.ack: true asks for acknowledged delivery; anything else is the original delivery, never a refusal", () => {
    const withDelivery = (delivery: unknown) => ({ header: { scope: "client", authentication: { username: "a", password: "p" }, delivery } });
    const ackOf = (delivery: unknown) => {
      const r = parseFirstFrame(withDelivery(delivery));
      if (!r.ok || r.frame.scope !== "client") throw new Error(JSON.stringify(r));
      return r.frame.ack;
    };
    expect(ackOf({ ack: true })).toBe(true);
    for (const other of [{ ack: false }, { ack: "true" }, { ack: 1 }, {}, null, "ack", [true], undefined]) expect(ackOf(other)).toBe(false);
  });

  test("a first payload that is not a well-formed message never refuses the login: it is set aside, saying why", () => {
    const auth = { username: "a", password: "p" };
    const credentials = { username: "a", password: "p" };
    // The shapes original clients log in with, and worse.
    const cases: [unknown, string][] = [
      [{ type: "dummy", data: null }, "payload.id: expected a string, got nothing"],
      [{ type: "type1", data: { x: 1 } }, "payload.id: expected a string, got nothing"],
      [{ data: null, type: "null" }, "payload.id: expected a string, got nothing"],
      [{ id: "1", data: 2 }, "payload.type: expected a string, got nothing"],
      [{ type: 7, id: "1" }, "payload.type: expected a string, got 7"],
      [{ type: "chat", id: ["x"] }, 'payload.id: expected a string, got ["x"]'],
      ["hello", 'payload: expected an object, got "hello"'],
      [42, "payload: expected an object, got 42"],
      [[1, 2], "payload: expected an object, got [1,2]"],
      [{}, "payload.type: expected a string, got nothing"],
    ];
    for (const [payload, ignored] of cases) {
      expect(parseFirstFrame(client(auth, { payload }))).toEqual({ ok: true, frame: { scope: "client", credentials, ack: false, ignored } });
    }
  });

  test("scope missing or unknown is bad_scope", () => {
    expect(problemOf(parseFirstFrame({ header: { scope: "admin" } }))).toEqual({
      code: "bad_scope",
      message: 'header.scope: expected "client" or "server", got "admin"',
    });
    expect(problemOf(parseFirstFrame({ header: {} }))).toEqual({
      code: "bad_scope",
      message: 'header.scope: expected "client" or "server", got nothing',
    });
    expect(problemOf(parseFirstFrame({ payload: {} }))).toEqual({
      code: "bad_scope",
      message: "header: expected an object, got nothing",
    });
    expect(problemOf(parseFirstFrame({ header: ["client"] })).code).toBe("bad_scope");
  });

  test("a frame that is not an object is malformed", () => {
    expect(problemOf(parseFirstFrame("hello"))).toEqual({
      code: "malformed_message",
      message: 'message: expected an object, got "hello"',
    });
    expect(problemOf(parseFirstFrame(null)).code).toBe("malformed_message");
  });

  test("missing or blank credentials are auth_failed and say what is missing", () => {
    expect(problemOf(parseFirstFrame({ header: { scope: "client" } }))).toEqual({
      code: "auth_failed",
      message: "header.authentication: expected an object {username, password}, got nothing",
    });
    expect(problemOf(parseFirstFrame(client({ password: "p" })))).toEqual({
      code: "auth_failed",
      message: "header.authentication.username: expected a string, got nothing",
    });
    expect(problemOf(parseFirstFrame(client({ username: " \n ", password: "p" })))).toEqual({
      code: "auth_failed",
      message: "header.authentication.username: expected a non-blank string, got a blank string",
    });
    expect(problemOf(parseFirstFrame(client({ username: "a", password: "" })))).toEqual({
      code: "auth_failed",
      message: "header.authentication.password: expected a non-blank string, got an empty string",
    });
  });

  test("never echoes what was sent as a password", () => {
    fc.assert(
      fc.property(fc.string().map((s) => `SECRET${s}`), (secret) => {
        const sent = [
          { username: "a", password: 0, hint: secret },
          { username: "a", password: [secret] },
          { username: "a", password: { p: secret } },
          { username: "a", password: secret.replace(/./g, " ") },
          { username: { secret }, password: secret },
          { secret },
          secret,
          [secret],
        ];
        for (const auth of sent) {
          const problem = problemOf(parseFirstFrame(client(auth)));
          expect(problem.code).toBe("auth_failed");
          expect(problem.message).not.toContain("SECRET");
        }
      }),
    );
    expect(problemOf(parseFirstFrame(client({ username: "a", password: 12345 })))).toEqual({
      code: "auth_failed",
      message: "header.authentication.password: expected a string, got a number",
    });
  });

  test("server scope: no credentials needed here, payload id optional, authentication passed through", () => {
    expect(parseFirstFrame({ header: { scope: "server" }, payload: { type: "chat", data: { m: 1 } } })).toEqual({
      ok: true,
      frame: { scope: "server", payload: { type: "chat", data: { m: 1 } } },
    });
    expect(
      parseFirstFrame({ header: { scope: "server", authentication: { secret: "s" } }, payload: { type: "t", id: "x" } }),
    ).toEqual({
      ok: true,
      frame: { scope: "server", authentication: { secret: "s" }, payload: { type: "t", id: "x", data: null } },
    });
    expect(problemOf(parseFirstFrame({ header: { scope: "server" } }))).toEqual({
      code: "malformed_message",
      message: "payload: expected an object, got nothing",
    });
    expect(problemOf(parseFirstFrame({ header: { scope: "server" }, payload: { type: "t", id: 7 } }))).toEqual({
      code: "malformed_message",
      message: "payload.id: expected a string, got 7",
    });
  });
});

describe("parseClientPayload", () => {
  test("type and id required; data any JSON value; missing data is null; header ignored", () => {
    for (const data of [null, 0, false, "", "s", [1], { a: { b: [] } }]) {
      expect(parseClientPayload({ payload: { type: "t", id: "i", data } })).toEqual({
        ok: true,
        payload: { type: "t", id: "i", data },
      });
    }
    expect(parseClientPayload({ header: 5, payload: { type: "t", id: "i", extra: 1 } })).toEqual({
      ok: true,
      payload: { type: "t", id: "i", data: null },
    });
  });

  test("problems are path-precise", () => {
    const cases: [unknown, string][] = [
      [{ payload: { type: "chat", id: 42 } }, "payload.id: expected a string, got 42"],
      [{ payload: { id: "1" } }, "payload.type: expected a string, got nothing"],
      [{ payload: [] }, "payload: expected an object, got []"],
      [{}, "payload: expected an object, got nothing"],
      [7, "message: expected an object, got 7"],
      [[{ payload: {} }], "message: expected an object, got [{\"payload\":{}}]"],
    ];
    for (const [input, message] of cases) {
      expect(problemOf(parseClientPayload(input))).toEqual({ code: "malformed_message", message });
    }
  });

  test("quoted values are cut short", () => {
    const message = problemOf(parseClientPayload({ payload: { type: "t", id: { long: "x".repeat(10_000) } } })).message;
    expect(message).toBe('payload.id: expected a string, got {"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxx...');
    const huge = Array.from({ length: 1_000_000 }, (_, i) => i);
    expect(problemOf(parseClientPayload({ payload: { type: huge, id: "1" } })).message).toBe(
      "payload.type: expected a string, got [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,1...",
    );
  });

  test("any message carrying type and id strings is accepted, and anything else is rejected with a message", () => {
    const field = fc.oneof(fc.string(), fc.jsonValue());
    const payload = fc.oneof(fc.jsonValue(), fc.record({ type: field, id: field, data: fc.jsonValue() }, { requiredKeys: [] }));
    const message = fc.oneof(fc.jsonValue(), fc.record({ header: fc.jsonValue(), payload }, { requiredKeys: ["payload"] }));
    fc.assert(
      fc.property(message, (value) => {
        const result = parseClientPayload(value);
        const sent = (value as { payload?: Record<string, unknown> } | null)?.payload;
        const valid =
          typeof sent === "object" && sent !== null && !Array.isArray(sent) &&
          typeof sent["type"] === "string" && typeof sent["id"] === "string";
        expect(result.ok).toBe(valid);
        if (result.ok) {
          const parsed: unknown = result.payload;
          expect(parsed).toEqual({ type: sent!["type"], id: sent!["id"], data: sent!["data"] ?? null });
        } else {
          expect(result.problem.code).toBe("malformed_message");
          expect(result.problem.message).toMatch(/^(message|payload(\.type|\.id)?): expected .+, got .+$/s);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("parseHandlerResponse", () => {
  test("current shape: header.command object, top-level data", () => {
    expect(
      parseHandlerResponse({ header: { status: "0", command: { type: "sendClients", data: ["alice", "bob"] } }, data: { t: "hi" } }),
    ).toEqual({
      ok: true,
      response: { status: "0", command: { type: "sendClients", data: ["alice", "bob"] }, data: { t: "hi" } },
    });
  });

  test("early-spec shape: command name, commandData, payload.data", () => {
    expect(
      parseHandlerResponse({ header: { status: "0", command: "sendHandler", commandData: "other" }, payload: { data: [1, 2] } }),
    ).toEqual({ ok: true, response: { status: "0", command: { type: "sendHandler", data: "other" }, data: [1, 2] } });
  });

  test("missing data and command data read as null", () => {
    expect(parseHandlerResponse({ header: { status: "0", command: { type: "sendClients" } } })).toEqual({
      ok: true,
      response: { status: "0", command: { type: "sendClients", data: null }, data: null },
    });
  });

  test("a numeric status is read as its string: the number 0 (in any spelling JSON allows) is success, docs/HANDLERS.md", () => {
    for (const text of ["0", "-0", "0.0", "0e5"]) {
      const result = parseHandlerResponse(JSON.parse(`{"header":{"status":${text},"command":{"type":"sendClients","data":[]}}}`));
      expect([text, result.ok && result.response.status]).toEqual([text, "0"]);
    }
    const oldShape = parseHandlerResponse({ header: { status: 0, command: "sendClients", commandData: [] } });
    expect(oldShape.ok && oldShape.response.status).toBe("0");
    const failing = parseHandlerResponse({ header: { status: 1 } });
    expect(failing.ok && failing.response.status).toBe("1");
    // Strings are taken as written: only "0" itself succeeds.
    for (const status of ["00", " 0", "0.0", ""]) {
      const r = parseHandlerResponse({ header: { status, command: { type: "sendClients", data: [] } } });
      expect(r.ok && r.response.status).toBe(status);
    }
  });

  test("a failing handler needs no command", () => {
    expect(parseHandlerResponse({ header: { status: "1" } })).toEqual({ ok: true, response: { status: "1", data: null } });
    expect(parseHandlerResponse({ header: { status: "2", command: 5 }, data: "why" })).toEqual({
      ok: true,
      response: { status: "2", data: "why" },
    });
  });

  test("problems are handler_failed and path-precise", () => {
    const cases: [unknown, string][] = [
      [{ header: { status: "0" } }, 'header.command: expected a command {"type", "data"} or a command name, got nothing'],
      [{ header: { status: "0", command: { data: [] } } }, "header.command.type: expected a string, got nothing"],
      [{ header: { status: "0", command: 3 } }, 'header.command: expected a command {"type", "data"} or a command name, got 3'],
      [{ header: { status: true } }, 'header.status: expected a string ("0" for success) or a number, got true'],
      [{ header: {} }, 'header.status: expected a string ("0" for success) or a number, got nothing'],
      [{ data: 1 }, "header: expected an object, got nothing"],
      ["0", 'response: expected an object, got "0"'],
    ];
    for (const [input, message] of cases) {
      expect(problemOf(parseHandlerResponse(input))).toEqual({ code: "handler_failed", message });
    }
  });
});

describe("parseBuiltinCommand", () => {
  test("reads command.type, its data and its args", () => {
    expect(parseBuiltinCommand({ command: { type: "close" } })).toEqual({ ok: true, type: "close", data: null, args: null });
    expect(parseBuiltinCommand({ command: { type: "ping", data: { n: 1 } } })).toEqual({ ok: true, type: "ping", data: { n: 1 }, args: null });
    expect(parseBuiltinCommand({ command: { type: "ack", args: { seq: 7 } } })).toEqual({ ok: true, type: "ack", data: null, args: { seq: 7 } });
  });

  test("problems name the path inside payload.data", () => {
    const cases: [unknown, string][] = [
      [{ command: { type: 1 } }, "payload.data.command.type: expected a string, got 1"],
      [{ command: "close" }, 'payload.data.command: expected an object, got "close"'],
      [{}, "payload.data.command: expected an object, got nothing"],
      [null, "payload.data: expected an object, got null"],
    ];
    for (const [input, message] of cases) {
      expect(problemOf(parseBuiltinCommand(input))).toEqual({ code: "malformed_message", message });
    }
  });
});

describe("hot paths agree with the schemas", () => {
  // Values near the valid shapes, so both branches of each fast path are exercised.
  const scalar = fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean(), fc.constant(0));
  const loose = fc.oneof(scalar, fc.jsonValue({ maxDepth: 2 }));
  // Mostly strings where strings belong, so valid messages (and near misses) are common.
  const str = fc.oneof({ arbitrary: fc.string(), weight: 4 }, { arbitrary: loose, weight: 1 });
  const payload = fc.record({ type: str, id: str, data: loose }, { requiredKeys: [] });
  const clientMessage = fc.oneof(
    fc.record({ header: loose, payload: fc.oneof(payload, loose) }, { requiredKeys: [] }),
    loose,
    fc.array(payload, { maxLength: 1 }),
  );
  const command = fc.oneof(
    { arbitrary: fc.record({ type: str, data: loose }, { requiredKeys: [] }), weight: 4 },
    { arbitrary: loose, weight: 1 },
  );
  const response = fc.oneof(
    fc.record(
      {
        header: fc.oneof(
          { arbitrary: fc.record({ status: str, command, commandData: loose, error: loose }, { requiredKeys: [] }), weight: 4 },
          { arbitrary: loose, weight: 1 },
        ),
        data: loose,
        payload: fc.oneof(fc.record({ data: loose }, { requiredKeys: [] }), loose),
      },
      { requiredKeys: [] },
    ),
    loose,
  );

  test("parseClientPayload", () => {
    fc.assert(
      fc.property(clientMessage, (m) => {
        expect(parseClientPayload(m)).toStrictEqual(_parseClientPayloadBySchema(m));
      }),
      { numRuns: 2000 },
    );
  });

  test("parseHandlerResponse", () => {
    fc.assert(
      fc.property(response, (r) => {
        expect(parseHandlerResponse(r)).toStrictEqual(_parseHandlerResponseBySchema(r));
      }),
      { numRuns: 2000 },
    );
  });
});
