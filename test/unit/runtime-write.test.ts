/**
 * The runtime adapters' write contract on Bun and on Deno (each in its own
 * process): bytes a write took are the transport's, so the caller may reuse
 * its buffer at once; the rest is offered again after drain. On connections
 * the adapter dialled and ones its listener accepted (on Deno they are made
 * differently), with large writes and with many small ones.
 */
import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { ROOT, RUNTIMES } from "../_harness/runtimes.ts";

const FIXTURE = join(ROOT, "test/fixtures/runtime-write.ts");

/** Reads late and slowly, so the writer meets a full socket and drain; resolves to all it got. */
function readSlowly(socket: Socket): Promise<Buffer> {
  const received: Buffer[] = [];
  socket.pause();
  setTimeout(() => socket.resume(), 200);
  socket.on("data", (d: Buffer) => received.push(d));
  return new Promise((resolve, reject) => {
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(received)));
  });
}

function check(all: Buffer, chunkBytes: number, chunks: number): void {
  expect(all.length).toBe(chunkBytes * chunks);
  for (let n = 0; n < chunks; n++) {
    const part = all.subarray(n * chunkBytes, (n + 1) * chunkBytes);
    const wrong = part.findIndex((b) => b !== n % 251);
    if (wrong >= 0) throw new Error(`chunk ${n}: byte ${wrong} is ${part[wrong]}, expected ${n % 251}`);
  }
}

/** RUNTIMES runs src/main.ts: the same runtime and flags, the fixture instead. */
function runFixture(runtime: "bun" | "deno", args: string[]) {
  const [cmd, ...rest] = RUNTIMES[runtime];
  const child = spawn(cmd!, [...rest.slice(0, -1), FIXTURE, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  return { child, exited };
}

const SHAPES = [
  { name: "256 KiB writes", chunkBytes: 256 * 1024, chunks: 50 },
  { name: "64 KiB writes", chunkBytes: 64 * 1024, chunks: 200 },
  { name: "1,000-byte writes", chunkBytes: 1000, chunks: 8000 },
];

for (const runtime of ["bun", "deno"] as const) {
  for (const { name, chunkBytes, chunks } of SHAPES) {
    test(`${runtime}, dialled connection, ${name}: a reused buffer's bytes arrive as they were when offered, past back-pressure`, async () => {
      let got!: Promise<Buffer>;
      const server = createServer((socket) => {
        got = readSlowly(socket);
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const port = (server.address() as { port: number }).port;
      const { exited } = runFixture(runtime, ["dial", String(port), String(chunkBytes), String(chunks)]);
      expect(await exited).toBe(0);
      server.close();
      check(await got, chunkBytes, chunks);
    }, 60000);

    test(`${runtime}, accepted connection, ${name}: a reused buffer's bytes arrive as they were when offered, past back-pressure`, async () => {
      const { child, exited } = runFixture(runtime, ["listen", String(chunkBytes), String(chunks)]);
      const port = await new Promise<number>((resolve, reject) => {
        let text = "";
        child.stdout!.on("data", (d: Buffer) => {
          text += d.toString();
          if (text.includes("\n")) resolve(Number(text.trim()));
        });
        child.on("exit", () => reject(new Error(`fixture exited before listening: ${text}`)));
      });
      const got = readSlowly(connect(port, "127.0.0.1"));
      expect(await exited).toBe(0);
      check(await got, chunkBytes, chunks);
    }, 60000);
  }
}
