/**
 * The client SDK's browser build: the copy the gateway embeds
 * (src/web/bester-client.js) is what src/sdk/ makes now, and it imports no
 * built-in module. (It runs in Chromium in test/e2e/web-chat.suite.ts.)
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { BROWSER_CLIENT_EMBEDDED, bundleBrowserClient } from "../../build/browser-client.ts";

test("the embedded bundle is fresh: 'bun build/browser-client.ts' rewrites it after a change to src/sdk/", async () => {
  const fresh = await bundleBrowserClient();
  expect(readFileSync(BROWSER_CLIENT_EMBEDDED, "utf8")).toBe(fresh);
});

test("it is an ES module with no built-in imports", async () => {
  const text = await bundleBrowserClient();
  expect(text).toMatch(/^export \{[^}]*\bconnectClient\b[^}]*\};?$/m);
  expect(text).not.toMatch(/["'](?:node|bun):/);
  expect(text).not.toContain("require(");
});
