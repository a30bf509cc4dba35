/**
 * A login flood against a real gateway, for docs/PERFORMANCE.md: N logins
 * with a wrong password from 127.0.0.1 all at once, and while they are
 * answered, one right login from 127.0.0.2 (another address) and one over
 * the UNIX socket. Reports the gateway's memory (VmRSS sampled every 10 ms,
 * VmHWM, and VmRSS 2 s after the flood), how long the flood took to be
 * answered, how each login was answered, and how long each right login took.
 *
 * The gateway runs from the checkout given (default: this one), under Bun or
 * Deno, with a SQLite account store holding one user. Linux only (/proc).
 *
 * `--throttle off` sets limits.loginFailures.enabled to false, so every
 * login of the flood is checked and only the queue of checks bounds them.
 *
 * Usage: bun bench/login-flood.ts [--runtime bun|deno] [--flood N] [--throttle on|off] [--root DIR] [--runs N]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runtime: { type: "string", default: "bun" },
    flood: { type: "string", default: "200" },
    root: { type: "string", default: resolve(import.meta.dir, "..") },
    runs: { type: "string", default: "1" },
    throttle: { type: "string", default: "on" },
  },
});
const root = resolve(values.root!);
const flood = Number(values.flood);
const argvOf = (runtime: string): string[] =>
  runtime === "deno"
    ? [join(root, "node_modules/.bin/deno"), "run", "--allow-all", "--config", join(root, "deno.json"), join(root, "src/main.ts")]
    : [join(root, "node_modules/.bin/bun"), "run", join(root, "src/main.ts")];
const argv = argvOf(values.runtime!);

function frame(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

/** Logs in once; resolves with the auth_special report's error code ("good" when it got in) and the time it took. */
function login(target: { port: number; localAddress?: string } | { path: string }, password: string): Promise<{ code: string; ms: number }> {
  return new Promise((resolveLogin) => {
    const started = performance.now();
    const socket: Socket = "path" in target ? connect(target.path) : connect({ host: "127.0.0.1", ...target });
    let buf = Buffer.alloc(0);
    const done = (code: string) => {
      socket.destroy();
      resolveLogin({ code, ms: performance.now() - started });
    };
    socket.on("connect", () => socket.write(frame({ header: { scope: "client", authentication: { username: "alice", password } }, payload: null })));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32LE(0)) return;
      const reply = JSON.parse(buf.subarray(4, 4 + buf.readUInt32LE(0)).toString());
      done(reply.header.status === "good" ? "good" : (reply.header.error?.code ?? "bad"));
    });
    socket.on("error", (err) => done(`socket error ${(err as NodeJS.ErrnoException).code}`));
  });
}

const statusKb = (pid: number, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const mib = (kb: number) => Math.round(kb / 1024);

async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bester-flood-"));
  const database = { type: "sqlite", sqlite: { path: join(dir, "accounts.db") } };
  const config = {
    network: { types: ["tcp4", "unix"], tcp4: { address: "127.0.0.1", port: 0 }, unix: { address: join(dir, "gw.sock") } },
    database,
    control: { enabled: false },
    informer: { enabled: false },
    log: { level: "info", format: "json" },
    ...(values.throttle === "off" ? { limits: { loginFailures: { enabled: false } } } : {}),
  };
  const configPath = join(dir, "server.conf");
  writeFileSync(configPath, JSON.stringify(config));
  const added = spawnSync(argv[0]!, [...argv.slice(1), "passwd", "add", "alice", "--config", configPath], { input: "right password\n" });
  if (added.status !== 0) throw new Error(`passwd add failed: ${added.stderr}`);
  const child = spawn(argv[0]!, [...argv.slice(1), "serve", "--config", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  let port = 0;
  let log = "";
  await new Promise<void>((ready, fail) => {
    child.stderr!.on("data", (d) => {
      log += d;
      const m = /"msg":"listening","listener":"tcp4","address":"127\.0\.0\.1:(\d+)"/.exec(log);
      if (m) port = Number(m[1]);
      if (log.includes('"msg":"ready"')) ready();
    });
    child.on("exit", () => fail(new Error(`gateway exited:\n${log}`)));
  });
  const pid = child.pid!;
  await new Promise((r) => setTimeout(r, 1000));
  const before = statusKb(pid, "VmRSS");
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, statusKb(pid, "VmRSS"))), 10);

  const started = performance.now();
  const wrong = Array.from({ length: flood }, (_, i) => login({ port }, `wrong-${i}`));
  // Right away, while the flood is being answered.
  const fromElsewhere = login({ port, localAddress: "127.0.0.2" }, "right password");
  const overUnix = login({ path: join(dir, "gw.sock") }, "right password");
  const answers = await Promise.all(wrong);
  const floodMs = performance.now() - started;
  const [elsewhere, unix] = await Promise.all([fromElsewhere, overUnix]);
  await new Promise((r) => setTimeout(r, 2000));
  clearInterval(sampler);
  const after = statusKb(pid, "VmRSS");
  const hwm = statusKb(pid, "VmHWM");
  const codes: Record<string, number> = {};
  for (const a of answers) codes[a.code] = (codes[a.code] ?? 0) + 1;
  console.log(
    JSON.stringify({
      runtime: values.runtime,
      root,
      flood,
      throttle: values.throttle,
      rssMiB: { before: mib(before), peakSampled: mib(peak), hwm: mib(hwm), twoSecondsAfter: mib(after) },
      floodAnsweredMs: Math.round(floodMs),
      answers: codes,
      rightLoginMs: { from127_0_0_2: Math.round(elsewhere.ms), unix: Math.round(unix.ms) },
      rightLogin: { from127_0_0_2: elsewhere.code, unix: unix.code },
    }),
  );
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}

for (let i = 0; i < Number(values.runs); i++) await run();
