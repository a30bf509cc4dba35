/**
 * The runtime adapters' write contract on Bun and on Deno (each in its own
 * process): bytes a write took are the transport's, so the caller may reuse
 * its buffer at once; the rest is offered again after drain.
 */
import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { ROOT, RUNTIMES } from "../_harness/runtimes.ts";

const FIXTURE = join(ROOT, "test/fixtures/runtime-write.ts");

for (const runtime of ["bun", "deno"] as const) {
  test(`${runtime}: a reused buffer's bytes arrive as they were when offered, past back-pressure`, async () => {
    const received: Buffer[] = [];
    const server = createServer((socket) => {
      // Reads late and slowly, so the writer meets a full socket and drain.
      socket.pause();
      setTimeout(() => socket.resume(), 200);
      socket.on("data", (d: Buffer) => received.push(d));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const port = (server.address() as { port: number }).port;
    const [cmd, ...args] = RUNTIMES[runtime];
    // RUNTIMES runs src/main.ts: the same runtime and flags, this fixture instead.
    const child = spawn(cmd!, [...args.slice(0, -1), FIXTURE, String(port)], { stdio: ["ignore", "inherit", "inherit"] });
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    server.close();
    expect(code).toBe(0);
    const all = Buffer.concat(received);
    expect(all.length).toBe(200 * 64 * 1024);
    for (let n = 0; n < 200; n++) {
      const part = all.subarray(n * 64 * 1024, (n + 1) * 64 * 1024);
      const wrong = part.findIndex((b) => b !== n % 251);
      if (wrong >= 0) throw new Error(`chunk ${n}: byte ${wrong} is ${part[wrong]}, expected ${n % 251}`);
    }
  }, 60000);
}
