/**
 * What a handler answer nested 100,000 deep costs the other clients, for
 * docs/PERFORMANCE.md: a bystander pings the gateway (`dummy`, one at a
 * time) for two seconds; one second in, another client sends a message
 * whose handler (test/fixtures/handlers/scripted.ts) answers with data
 * nested that deep. Reports the bystander's longest round trip with and
 * without the deep answer in flight, and how the sender was answered.
 *
 * Usage: bun bench/deep-answer.ts [--runtime bun|deno] [--depth N] [--root DIR] [--runs N]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runtime: { type: "string", default: "bun" },
    depth: { type: "string", default: "100000" },
    root: { type: "string", default: resolve(import.meta.dir, "..") },
    runs: { type: "string", default: "1" },
  },
});
const root = resolve(values.root!);
const here = resolve(import.meta.dir, "..");
const bun = join(here, "node_modules/.bin/bun");
const argv =
  values.runtime === "deno"
    ? [join(root, "node_modules/.bin/deno"), "run", "--allow-all", "--config", join(root, "deno.json"), join(root, "src/main.ts")]
    : [join(root, "node_modules/.bin/bun"), "run", join(root, "src/main.ts")];

function frame(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

/** A logged-in client: send, and wait for the next frame. */
async function client(port: number, user: string) {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  let buf = Buffer.alloc(0);
  const waiting: ((v: any) => void)[] = [];
  const inbox: any[] = [];
  socket.on("data", (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
      const value = JSON.parse(buf.subarray(4, 4 + buf.readUInt32LE(0)).toString());
      buf = buf.subarray(4 + buf.readUInt32LE(0));
      const w = waiting.shift();
      if (w) w(value);
      else inbox.push(value);
    }
  });
  await new Promise((r) => socket.once("connect", r));
  const next = () => new Promise<any>((r) => (inbox.length > 0 ? r(inbox.shift()) : waiting.push(r)));
  socket.write(frame({ header: { scope: "client", authentication: { username: user, password: "pw" } }, payload: null }));
  await next();
  return { send: (v: unknown) => socket.write(frame(v)), next, close: () => socket.destroy() };
}

async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bester-deep-"));
  const config = {
    network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0 } },
    handlers: {
      availableTypes: ["script"],
      typeMap: { script: { handlerBinary: bun, handlerArgs: [join(here, "test/fixtures/handlers/scripted.ts")], unixDomainSocketPath: join(dir, "s.sock") } },
    },
    control: { enabled: false },
    informer: { enabled: false },
    log: { level: "info", format: "json" },
  };
  writeFileSync(join(dir, "server.conf"), JSON.stringify(config));
  const child = spawn(argv[0]!, [...argv.slice(1), "serve", "--config", join(dir, "server.conf")], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  let port = 0;
  await new Promise<void>((ready) =>
    child.stderr!.on("data", (d) => {
      log += d;
      port ||= Number(/"listener":"tcp4","address":"127\.0\.0\.1:(\d+)"/.exec(log)?.[1] ?? 0);
      if (log.includes('"msg":"ready"')) ready();
    }),
  );
  const bystander = await client(port, "bystander");
  const sender = await client(port, "sender");
  const quiet: number[] = [];
  const during: number[] = [];
  let deepSent = 0;
  let deepAnswered = 0;
  let answer: any;
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < 2000) {
    if (deepSent === 0 && performance.now() - start > 1000) {
      deepSent = performance.now();
      sender.send({ payload: { type: "script", id: "deep", data: { do: "deep", depth: Number(values.depth) } } });
      sender.next().then((r) => {
        answer = r;
        deepAnswered = performance.now();
      });
    }
    const t = performance.now();
    bystander.send({ payload: { type: "dummy", id: `p${n++}`, data: null } });
    await bystander.next();
    const rtt = performance.now() - t;
    (deepSent > 0 && (deepAnswered === 0 || t < deepAnswered) ? during : quiet).push(rtt);
  }
  while (deepAnswered === 0) await new Promise((r) => setTimeout(r, 10));
  const max = (xs: number[]) => Math.max(0, ...xs).toFixed(2);
  console.log(
    JSON.stringify({
      runtime: values.runtime,
      root,
      depth: Number(values.depth),
      answer: answer.header.status === "good" ? "good" : `${answer.header.error.code}: ${answer.header.error.message}`,
      deepAnsweredMs: Number((deepAnswered - deepSent).toFixed(1)),
      bystanderMaxRttMs: { quiet: Number(max(quiet)), whileDeepInFlight: Number(max(during)) },
      pingsWhileDeepInFlight: during.length,
    }),
  );
  bystander.close();
  sender.close();
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}

for (let i = 0; i < Number(values.runs); i++) await run();
