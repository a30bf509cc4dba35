/** originRefusal: which pages may open a WebSocket to the gateway. */
import { describe, expect, test } from "bun:test";
import { originRefusal } from "../../src/server/origin.ts";

const LISTED = ["https://app.example.com"];

describe("originRefusal", () => {
  test("a client that sends no Origin (not a browser) is taken", () => {
    expect(originRefusal(null, "127.0.0.1:2222", [], true)).toBeUndefined();
  });

  test("the listener's own pages are taken, whatever the case of the Host header", () => {
    expect(originRefusal("http://127.0.0.1:2222", "127.0.0.1:2222", [], true)).toBeUndefined();
    expect(originRefusal("http://localhost:2222", "LOCALHOST:2222", [], true)).toBeUndefined();
    expect(originRefusal("http://[::1]:2222", "[::1]:2222", [], true)).toBeUndefined();
    expect(originRefusal("https://chat.example.com", "chat.example.com", [], false)).toBeUndefined();
  });

  test("a listed origin is taken; any other is refused, quoted", () => {
    expect(originRefusal("https://app.example.com", "127.0.0.1:2222", LISTED, true)).toBeUndefined();
    expect(originRefusal("https://evil.example", "127.0.0.1:2222", LISTED, true)).toBe(
      'origin "https://evil.example" is not allowed: not this listener\'s own pages, and not in network.ws.allowedOrigins',
    );
    // The same host on another port is another origin.
    expect(originRefusal("http://127.0.0.1:8080", "127.0.0.1:2222", [], true)).toContain("is not allowed");
    expect(originRefusal("null", "127.0.0.1:2222", [], true)).toContain('origin "null" is not allowed');
  });

  test("on a loopback listener, a page of a name pointed at it (DNS rebinding) is not taken as its own", () => {
    expect(originRefusal("http://rebind.example:2222", "rebind.example:2222", [], true)).toContain("its own pages are served under localhost, 127.0.0.1 or [::1] only");
    expect(originRefusal("http://rebind.example:2222", "rebind.example:2222", ["http://rebind.example:2222"], true)).toBeUndefined();
    expect(originRefusal("http://rebind.example:2222", "rebind.example:2222", [], false)).toBeUndefined();
  });
});
