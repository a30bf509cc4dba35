/**
 * The web chat page and the client SDK in a real headless Chromium against
 * a live gateway: two pages and a TCP client chat with each other; a bad
 * frame from a page gets its fatal frame and close code; a page of another
 * site is refused before the upgrade, a listed one is taken and runs the
 * SDK's browser build. Pages are polled, never waited for by the clock.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { launchBrowser, saveScreenshot, type TestBrowser, until } from "../_harness/browser.ts";
import { type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { ROOT, type RuntimeName } from "../_harness/runtimes.ts";
import { login, type Wire } from "../_harness/wire.ts";

const MAX_FRAME = 8192;

/** A page of another site: a tiny server of this test's own, on another port. */
function otherSite(body: string) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () => new Response(body, { headers: { "Content-Type": "text/html; charset=utf-8" } }),
  });
  return { origin: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}

/** Logs in on the chat page as `name` and waits for the chat to show. */
async function logIn(page: Page, chat: string, name: string): Promise<void> {
  await page.goto(chat);
  await page.fill("#username", name);
  await page.fill("#password", "pw");
  await page.click("#login button[type=submit]");
  await until(page, `${name} logged in`, () => document.getElementById("chat")?.hidden === false);
}

async function say(page: Page, to: string, body: string): Promise<void> {
  await page.fill("#to", to);
  await page.fill("#body", body);
  await page.click("#send button[type=submit]");
}

/** Whether the page's log has a line with both texts. */
const logHas = ([a, b]: [string, string]) =>
  [...document.querySelectorAll("#log li")].some((li) => li.textContent!.includes(a) && li.textContent!.includes(b));

export function webChatSuite(runtime: RuntimeName) {
  describe(`${runtime}: web chat in a browser`, () => {
    let browser: TestBrowser;
    let gw: RunningGateway;
    // Two other sites: one listed in allowedOrigins, one not. Their pages are filled in by the tests.
    const listed = otherSite("<!doctype html><title>listed</title>");
    const stranger = otherSite("<!doctype html><title>stranger</title>");
    const wires: Wire[] = [];

    beforeAll(async () => {
      [browser, gw] = await Promise.all([
        launchBrowser(),
        startGateway(runtime, {
          network: { types: ["tcp4", "unix", "ws"], ws: { port: 0, allowedOrigins: [listed.origin] } },
          handlers: {
            availableTypes: ["chat"],
            typeMap: { chat: { bundled: "chat", unixDomainSocketPath: "chat.sock", mode: "persistent", envelope: true } },
          },
          informer: { enabled: true },
          limits: { maxFrameBytes: MAX_FRAME },
        }),
      ]);
    });
    afterAll(async () => {
      for (const w of wires) w.close();
      listed.stop();
      stranger.stop();
      await browser?.close();
      await gw?.stop();
    });

    test("two pages and a TCP client chat with each other; the pages show who is online", async () => {
      const alice = await browser.newPage();
      const bob = await browser.newPage();
      await logIn(alice, gw.chat!, "alice");
      await logIn(bob, gw.chat!, "bob");
      const carol = await login(gw.tcp4, "carol");
      wires.push(carol);
      await until(alice, "alice, bob and carol online", () =>
        ["alice", "bob", "carol"].every((u) => document.querySelector(`#online li[data-user="${u}"]`)));

      await say(alice, "bob", "hi bob, from a browser");
      await until(bob, "alice's line at bob", logHas, ["alice", "hi bob, from a browser"]);

      await say(bob, "carol", "hello carol, bob here");
      const atCarol = await carol.next(10_000);
      expect(atCarol.payload).toEqual({ type: "chat", data: { from: "bob", body: "hello carol, bob here" } });

      carol.send({ payload: { type: "chat", id: "c1", data: { to: ["alice", "bob"], body: "hi both, from a terminal" } } });
      await until(alice, "carol's line at alice", logHas, ["carol", "hi both, from a terminal"]);
      await until(bob, "carol's line at bob", logHas, ["carol", "hi both, from a terminal"]);
      expect((await carol.next()).payload.id).toBe("c1");

      await say(bob, "alice", "carol says hi too");
      await until(alice, "bob's line at alice", logHas, ["bob", "carol says hi too"]);
      await say(alice, "bob, carol", "see you both at the standup ☕");
      await until(bob, "alice's last line at bob", logHas, ["alice", "standup"]);
      expect((await carol.next()).payload.data).toEqual({ from: "alice", body: "see you both at the standup ☕" });
      expect(browser.problems).toEqual([]);
      await alice.setViewportSize({ width: 1000, height: 520 });
      await saveScreenshot(alice, `web-chat-${runtime}`);

      // Text is shown as text, never run as markup.
      await say(bob, "alice", `<img src=x onerror="window.pwned=1">`);
      await until(alice, "the markup as text", logHas, ["bob", "<img src=x"]);
      expect(await alice.locator("#log img").count()).toBe(0);
      expect(await alice.evaluate(() => (window as any).pwned)).toBeUndefined();

      // Logging out ends the session: the TCP side sees alice go.
      await alice.click("#logout");
      await until(alice, "the login form again", () => document.getElementById("login")?.hidden === false);
      carol.send({ payload: { type: "chat", id: "c2", data: { who: true } } });
      const online = await carol.next();
      expect(online.payload.data.online).not.toContain("alice");
      await bob.close();
      await alice.close();
    });

    test("a bad frame from a page gets its fatal frame, then close code 1009 (too large) or 1008", async () => {
      const page = await browser.newPage();
      await page.goto(gw.chat!);
      const attempt = (message: string) =>
        page.evaluate(
          ([url, message]) =>
            new Promise<{ frames: any[]; code: number }>((resolve) => {
              const ws = new WebSocket(url!);
              const frames: any[] = [];
              ws.onopen = () =>
                ws.send(JSON.stringify({ header: { scope: "client", authentication: { username: "pat", password: "pw" } }, payload: { type: "dummy", id: "l", data: null } }));
              ws.onmessage = (e) => {
                frames.push(JSON.parse(e.data));
                if (frames.length === 1) ws.send(message!);
              };
              ws.onclose = (e) => resolve({ frames, code: e.code });
            }),
          [gw.ws!, message],
        );
      const tooLarge = await attempt(JSON.stringify({ payload: { type: "dummy", id: "big", data: "x".repeat(MAX_FRAME) } }));
      expect(tooLarge.frames[0].payload.id).toBe("auth_special");
      expect(tooLarge.frames[1].header).toMatchObject({ messageType: "fatal", error: { code: "frame_too_large" } });
      expect(tooLarge.code).toBe(1009);
      const malformed = await attempt(JSON.stringify({ payload: { type: "dummy" } }));
      expect(malformed.frames[1].header).toMatchObject({ messageType: "fatal", error: { code: "malformed_message" } });
      expect(malformed.code).toBe(1008);
      await page.close();
    });

    test("a page of another site is refused before the upgrade; a listed one is taken and runs the SDK's browser build", async () => {
      const page = await browser.newPage();
      await page.goto(stranger.origin);
      const refused = await page.evaluate(
        (url) => new Promise<{ opened: boolean; code: number }>((resolve) => {
          const ws = new WebSocket(url);
          let opened = false;
          ws.onopen = () => (opened = true);
          ws.onclose = (e) => resolve({ opened, code: e.code });
        }),
        gw.ws!,
      );
      expect(refused).toEqual({ opened: false, code: 1006 });
      const logged = await gw.waitForLog((r) => r.msg === "websocket refused" && r.origin === stranger.origin);
      expect(logged.reason).toContain("not in network.ws.allowedOrigins");

      // The listed site imports the SDK from the gateway (a module script across origins) and chats.
      await page.goto(listed.origin);
      const sdk = `${gw.chat!.replace(/\/chat$/, "")}/bester-client.js`;
      const result = await page.evaluate(
        async ([sdk, url]) => {
          const { connectClient } = await import(sdk!);
          const client = await connectClient({ url, username: "listed-lee", password: "pw" });
          const who = await client.send("builtin", { command: { type: "whoami" } });
          const closed = await client.close();
          return { who: who.data, closed };
        },
        [sdk, gw.ws!],
      );
      expect(result).toEqual({ who: expect.objectContaining({ username: "listed-lee", listener: "ws" }), closed: { by: "client", code: 1000 } });
      expect(browser.problems.filter((p) => !p.includes("WebSocket"))).toEqual([]);
      await page.close();
    });

    test("dist/bester-client.js is the served SDK: an ES module with no built-in imports", async () => {
      const dist = readFileSync(join(ROOT, "dist/bester-client.js"), "utf8");
      expect(dist).not.toMatch(/\bfrom\s*["'](?:node|bun):|\brequire\s*\(/);
      expect(dist).toContain("export {");
      const served = await (await fetch(gw.chat!.replace(/\/chat$/, "/bester-client.js"))).text();
      expect(served).toBe(dist);
    });
  });
}
