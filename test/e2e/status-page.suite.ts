/**
 * The status page in a real headless Chromium against a live gateway: what
 * it shows as clients come and go and a handler is killed and restarted, the
 * rates of real traffic, usernames kept as text, and a token-protected API
 * asking for the token. The page is polled, never waited for by the clock.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import { launchBrowser, saveScreenshot, type TestBrowser, until } from "../_harness/browser.ts";
import { type RunningGateway, startGateway } from "../_harness/gateway.ts";
import { scripted } from "../_harness/handlers.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { login, type Wire } from "../_harness/wire.ts";

const SECRET = "the-secret-of-b-example-0123456789";

const withControl = (extra: object = {}) => ({
  control: { enabled: true, address: "127.0.0.1", port: 0 },
  ...extra,
});

/** The text of the handler row's cell `cls` (a class: state, restarts). */
function handlerCell(page: Page, type: string, cls: string): Promise<string | null> {
  return page.locator(`#handlers-body tr[data-type="${type}"] td.${cls}`).textContent();
}

export function statusPageSuite(runtime: RuntimeName) {
  describe(`${runtime}: status page`, () => {
    let browser: TestBrowser;
    let gw: RunningGateway;
    let page: Page;
    const wires: Wire[] = [];

    beforeAll(async () => {
      [browser, gw] = await Promise.all([
        launchBrowser(),
        startGateway(
          runtime,
          withControl({
            handlers: { availableTypes: ["script"], typeMap: { script: scripted("script.sock", { mode: "persistent" }) } },
            federation: {
              name: "a.example",
              peers: {
                "b.example": { address: "127.0.0.1:1", secret: SECRET },
                legacy: { address: "[::1]:2", original: true },
              },
              allowOriginal: ["192.0.2.7"],
            },
          }),
        ),
      ]);
      page = await browser.newPage();
      await page.goto(`${gw.control}/`);
    });
    afterAll(async () => {
      for (const w of wires) w.close();
      await browser?.close();
      await gw?.stop();
    });

    test("shows the version, listeners, handlers and peers (never a peer's secret) and who has messages waiting; no cluster section without a cluster", async () => {
      await until(page, "three listeners", () => document.querySelectorAll("#listeners-body tr").length === 3);
      const kinds = await page.locator("#listeners-body tr td:first-child").allTextContents();
      expect(kinds.sort()).toEqual(["tcp4", "tcp6", "unix"]);
      await until(page, "handler script up", () => document.querySelector('#handlers-body tr[data-type="script"] td.state')?.textContent === "up");
      expect(await page.locator("#version").textContent()).toMatch(/^v\d+\.\d+\.\d+/);
      expect(await page.locator("#runtime").textContent()).toContain(runtime === "deno" ? "deno" : "bun");
      expect(await page.locator("#ready").textContent()).toBe("ready");

      const peers = await page.locator("#peers-body tr").evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
      expect(peers).toEqual([
        ["b.example", "127.0.0.1:1", "shared secret", "plain", "0"],
        ["legacy", "[::1]:2", "none (original server)", "plain", "0"],
      ]);
      expect(await page.locator("#peers-self").textContent()).toContain("a.example");
      expect(await page.locator("#peers-original").textContent()).toContain("192.0.2.7");
      const api = await (await fetch(`${gw.control}/v1/peers`)).text();
      expect(api).not.toContain(SECRET);
      expect(await page.content()).not.toContain(SECRET);

      // Cluster nodes come with a cluster (404 without one), so that section stays hidden;
      // the inbox section shows who has messages waiting.
      expect(await page.locator("#cluster").isHidden()).toBe(true);
      (await login(gw.tcp4, "inbox-amy")).close();
      await until(page, "no inbox-amy yet", () => !document.querySelector("#inboxes")!.textContent!.includes("inbox-amy"));
      await fetch(`${gw.control}/v1/messages`, { method: "POST", body: JSON.stringify({ to: ["inbox-amy"], data: "while away" }) });
      await until(page, "inbox-amy's inbox", () => {
        const section = document.querySelector("#inboxes") as HTMLElement;
        return !section.hidden && [...section.querySelectorAll("td")].some((td) => td.textContent === "inbox-amy");
      });
      expect(browser.problems).toEqual([]);
    });

    test("a client appears when it logs in and goes when it leaves", async () => {
      expect(await page.locator('#clients-body tr[data-user="alice"]').count()).toBe(0);
      const alice = await login(gw.tcp4, "alice");
      await until(page, "alice's session", () => document.querySelector('#clients-body tr[data-user="alice"]') !== null);
      const cells = await page.locator('#clients-body tr[data-user="alice"] td').allTextContents();
      expect(cells[0]).toBe("alice");
      expect(cells[2]).toBe("tcp4");
      expect(cells[3]).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(await page.locator("#clients-count").textContent()).toBe("1 user, 1 session");

      alice.close();
      await until(page, "alice gone", () => document.querySelector('#clients-body tr[data-user="alice"]') === null);
      expect(await page.locator("#clients-count").textContent()).toBe("0 users, 0 sessions");
    });

    test("a username is shown as the text it is, never run as markup", async () => {
      const name = `<img src=x onerror="window.pwned=1">bob</b>`;
      wires.push(await login(gw.unix, name));
      await until(page, "the odd username's row", (n) => [...document.querySelectorAll<HTMLElement>("#clients-body tr")].some((r) => r.dataset.user === n), name);
      expect(await page.locator("#clients-body td.user").allTextContents()).toEqual([name]);
      expect(await page.locator("#clients-body img").count()).toBe(0);
      expect(await page.evaluate(() => (window as any).pwned)).toBeUndefined();
    });

    test("a killed handler is restarted, and the page counts the restart", async () => {
      const before = (await (await fetch(`${gw.control}/v1/handlers`)).json()) as any;
      const { pid, restarts } = before.handlers[0];
      expect(restarts).toBe(0);
      await until(page, "the handler's pid", (p) => document.querySelector('#handlers-body tr[data-type="script"] td:nth-child(4)')?.textContent === String(p), pid);
      process.kill(pid, "SIGKILL");
      await until(page, "restarts 1 and up again", () => {
        const row = document.querySelector('#handlers-body tr[data-type="script"]');
        return row?.querySelector("td.restarts")?.textContent === "1" && row.querySelector("td.state")?.textContent === "up";
      });
      expect(await handlerCell(page, "script", "restarts")).toBe("1");
      const newPid = await page.locator('#handlers-body tr[data-type="script"] td:nth-child(4)').textContent();
      expect(newPid).not.toBe(String(pid));
      expect(newPid).toMatch(/^\d+$/);
    });

    test("a page of another site cannot act on the gateway; the status page's own origin can", async () => {
      const victim = await login(gw.tcp4, "victim");
      wires.push(victim);
      // Another origin, the same server: http://localhost:PORT is not http://127.0.0.1:PORT.
      const other = await browser.newPage();
      // Not the status page, whose policy would stop the page's own fetch: any page of that origin.
      await other.goto(`http://localhost:${new URL(gw.control!).port}/elsewhere`);
      // A "simple" request, which a browser sends without asking the server first; it
      // resolves once the answer is in, and a disconnect happens before the answer.
      await other.evaluate((url) => fetch(`${url}/v1/clients/victim/disconnect`, { method: "POST", mode: "no-cors" }).then(() => {}), gw.control!);
      await other.close();
      const clients = (await (await fetch(`${gw.control}/v1/clients`)).json()) as any;
      expect(clients.clients.map((c: any) => c.username)).toContain("victim");
      expect(victim.isClosed()).toBe(false);

      const own = await page.evaluate(async () => {
        const res = await fetch("v1/messages", { method: "POST", body: JSON.stringify({ to: ["nobody-here"], data: "hi" }) });
        return { status: res.status, body: await res.json() };
      });
      expect(own).toEqual({ status: 200, body: { type: "control", delivered: [], undelivered: ["nobody-here"] } });
    });

    test("traffic shows as a message rate, and a bad message as a bad report", async () => {
      const carol = await login(gw.tcp6, "carol");
      wires.push(carol, await login(gw.tcp4, "dave"));
      // One burst: the next sample (every 2 s) turns it into a rate, which the last minute's column keeps showing.
      for (let i = 0; i < 20; i++) carol.send({ payload: { type: "script", id: `m${i}`, data: { do: "deliver", to: ["carol", "dave"], body: i } } });
      for (let i = 0; i < 5; i++) carol.send({ payload: { type: "no-such-type", id: `x${i}`, data: null } });
      for (let i = 0; i < 45; i++) await carol.next();
      await until(page, "rates above zero", () =>
        ["messagesIn", "delivered", "badReports"].every((c) => Number(document.querySelector(`#rates-body tr[data-counter="${c}"] td:nth-child(3)`)?.textContent) > 0),
      );
      expect(await page.locator("#rates-chart polyline").count()).toBe(3);
      await until(page, "carol and dave listed", () => ["carol", "dave"].every((u) => document.querySelector(`#clients-body tr[data-user="${u}"]`)));
      expect(browser.problems).toEqual([]);
      await saveScreenshot(page, `status-page-${runtime}`);
    });
  });

  describe(`${runtime}: status page with a token`, () => {
    test("the page holds no data until the token is given, says when one is wrong, and keeps it for the tab", async () => {
      const token = "status-t0ken-5678";
      const [browser, gw] = await Promise.all([
        launchBrowser(),
        startGateway(runtime, withControl({ control: { enabled: true, address: "127.0.0.1", port: 0, token } })),
      ]);
      try {
        const page = await browser.newPage();
        await page.goto(`${gw.control}/`);
        await until(page, "the token form", () => document.getElementById("login")?.hidden === false);
        expect(await page.locator("#data").isHidden()).toBe(true);
        expect(await page.locator("#listeners-body tr").count()).toBe(0);

        await page.fill("#token", "wrong-token");
        await page.click("#login button[type=submit]");
        await until(page, "the refusal", () => document.getElementById("login-error")?.textContent === "That token was refused.");
        expect(await page.locator("#login").isVisible()).toBe(true);
        expect(await page.locator("#listeners-body tr").count()).toBe(0);

        await page.fill("#token", token);
        await page.click("#login button[type=submit]");
        await until(page, "the data", () => document.querySelectorAll("#listeners-body tr").length === 3);
        expect(await page.locator("#login").isHidden()).toBe(true);
        const alice = await login(gw.tcp4, "alice");
        await until(page, "alice", () => document.querySelector('#clients-body tr[data-user="alice"]') !== null);
        alice.close();

        // A reload in the same tab keeps the token; a new tab in the same browser has to ask again.
        await page.reload();
        await until(page, "the data after a reload", () => document.querySelectorAll("#listeners-body tr").length === 3);
        expect(await page.locator("#login").isHidden()).toBe(true);
        await saveScreenshot(page, `status-page-token-${runtime}`);
        const other = await browser.newPage();
        await other.goto(`${gw.control}/`);
        await until(other, "the token form in a new tab", () => document.getElementById("login")?.hidden === false);

        // Forgetting the token asks for it again.
        await page.click("#forget");
        await until(page, "the token form after forgetting", () => document.getElementById("login")?.hidden === false);
        expect(browser.problems).toEqual([]);
      } finally {
        await browser.close();
        await gw.stop();
      }
    });
  });
}
