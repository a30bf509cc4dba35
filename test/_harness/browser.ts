/**
 * A real headless Chromium for tests: Debian's `chromium` package (installed
 * by scripts/test-deps.sh), driven by playwright-core over its own pipe.
 * Playwright's browser downloads are never used; the executable is named.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { tempDir } from "./gateway.ts";
import { ROOT } from "./runtimes.ts";

/** The browser the tests drive; BESTER_TEST_CHROMIUM names another (a distribution that installs it elsewhere). */
export const CHROMIUM = process.env.BESTER_TEST_CHROMIUM ?? "/usr/bin/chromium";

/** Screenshots and other things a test leaves for people to look at (gitignored). */
export const ARTIFACTS = join(ROOT, "test-artifacts");

/**
 * Headless, and quiet on the network: without the background-networking
 * flags Chromium dials Google's services at start, which a sandbox without
 * internet answers by refusing its connections. No sandbox: tests run as root.
 */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  /** A new tab; what its scripts throw or log as errors is collected in `problems`. */
  newPage(): Promise<Page>;
  /** Uncaught exceptions and console errors of every page (a refused inline script shows here). */
  readonly problems: string[];
  close(): Promise<void>;
}

const problemsOfPage = new WeakMap<Page, string[]>();

/** What went wrong in the browser that opened `page` so far (for the message of a failed wait). */
export function problemsOf(page: Page): string[] {
  return problemsOfPage.get(page) ?? [];
}

export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: 'bash scripts/test-deps.sh' installs Debian's chromium (or set BESTER_TEST_CHROMIUM)`);
  }
  // A fresh profile per launch: nothing (storage, cache) carries from one test run to the next.
  const context: BrowserContext = await chromium.launchPersistentContext(tempDir("bester-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: 60_000,
    viewport: { width: 1280, height: 900 },
  });
  const problems: string[] = [];
  return {
    problems,
    async newPage() {
      const page = await context.newPage();
      problemsOfPage.set(page, problems);
      page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
      page.on("console", (m) => {
        // A 401 or 404 the page asked for and handles is logged by Chromium too; that is not a problem.
        if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
      });
      return page;
    },
    close: () => context.close(),
  };
}

/**
 * Polls `predicate` in the page until it holds; on a timeout, the error
 * says what was awaited and shows the page's text and the browser's errors.
 */
export async function until(page: Page, what: string, predicate: (arg: any) => unknown, arg?: unknown, ms = 20_000): Promise<void> {
  try {
    await page.waitForFunction(predicate, arg, { timeout: ms, polling: 100 });
  } catch (err) {
    const text = await page.evaluate(() => document.body.innerText).catch(() => "(page gone)");
    const problems = problemsOf(page).join("\n") || "(none)";
    throw new Error(`${what}: not seen within ${ms} ms (${(err as Error).message.split("\n")[0]})\n--- page text ---\n${text}\n--- browser errors ---\n${problems}`);
  }
}

/** Saves a screenshot of `page` as test-artifacts/NAME.png; returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
