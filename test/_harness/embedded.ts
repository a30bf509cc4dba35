/**
 * The embedded default as a user meets it: the config `bester check` prints
 * when given no file, run with `bester serve`, driven with `bester client`.
 *
 * The embedded default binds fixed ports (2220, 2221, 2222, the control port), which
 * would collide with a developer's running gateway or a second test run on the
 * same machine. So tests run it from a config file that is the embedded
 * default exactly as the program itself prints it, with only the bound ports
 * set to 0 (`onFreePorts`), and check that nothing else differs.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";

type Json = { [k: string]: any };

/** What `argv check` (no config file) prints: the effective embedded default. */
export function printedDefault(argv: string[], opts: { cwd: string; env: Record<string, string> }): Json {
  const [cmd, ...pre] = argv;
  const r = spawnSync(cmd!, [...pre, "check"], { ...opts, encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`check with no config exited ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Every `port` the gateway binds (not a port it connects to, such as Redis's) set to 0. */
export function onFreePorts(config: Json): Json {
  const walk = (node: any, path: string[]): any => {
    if (Array.isArray(node)) return node.map((v, i) => walk(v, [...path, String(i)]));
    if (!node || typeof node !== "object") return node;
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === "port" && !path.includes("redis") && typeof v === "number" ? 0 : walk(v, [...path, k]);
    }
    return out;
  };
  // check's output has only keys of the file format, so it loads back as is.
  return walk(config, []);
}

/** Dotted paths whose values differ between two JSON trees. */
export function differences(a: any, b: any, path = ""): string[] {
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => differences(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return a === b ? [] : [path];
}

export interface ServedGateway {
  child: ChildProcess;
  /** listener kind -> address as logged: `127.0.0.1:40001`, `[::1]:40002`, `unix:/path`. */
  addresses: Record<string, string>;
  log(): string;
  /** Milliseconds from spawn to the `ready` line. */
  readyAfterMs: number;
  exited: Promise<number | null>;
}

/** Starts `argv serve [args]` and waits for the text log's `ready` line. */
export async function serve(
  argv: string[],
  args: string[],
  opts: { cwd: string; env: Record<string, string>; detached?: boolean },
  readyMs = 30_000,
): Promise<ServedGateway> {
  const [cmd, ...pre] = argv;
  const started = performance.now();
  const child = spawn(cmd!, [...pre, "serve", ...args], { ...opts, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let readyAt = 0;
  const wakers: Array<() => void> = [];
  const onData = (d: Buffer) => {
    log += d;
    if (!readyAt && /^\S+ INFO\s+ready\b/m.test(log)) readyAt = performance.now();
    wakers.splice(0).forEach((w) => w());
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => (wakers.splice(0).forEach((w) => w()), resolve(code))),
  );
  const deadline = Date.now() + readyMs;
  while (!readyAt) {
    if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}) before ready\n${log}`);
    const left = deadline - Date.now();
    if (left <= 0) {
      child.kill("SIGKILL");
      throw new Error(`serve not ready within ${readyMs} ms\n${log}`);
    }
    await new Promise<void>((r) => {
      const t = setTimeout(r, left);
      wakers.push(() => (clearTimeout(t), r()));
    });
  }
  const addresses: Record<string, string> = {};
  for (const m of log.matchAll(/ listening listener=(\S+) address=(\S+)/g)) addresses[m[1]!] = m[2]!;
  return { child, addresses, log: () => log, readyAfterMs: readyAt - started, exited };
}

/** An interactive `bester client`, stdin kept open, stdout collected. */
export function client(argv: string[], args: string[], opts: { cwd: string; env: Record<string, string> }) {
  const [cmd, ...pre] = argv;
  const child = spawn(cmd!, [...pre, "client", ...args], { ...opts, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  const wakers: Array<() => void> = [];
  const wake = () => wakers.splice(0).forEach((w) => w());
  child.stdout!.on("data", (d) => ((out += d), wake()));
  child.stderr!.on("data", (d) => ((out += d), wake()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => (wake(), resolve(code))));
  return {
    child,
    exited,
    write: (text: string) => child.stdin!.write(text),
    async waitFor(text: string, ms = 15_000) {
      const deadline = Date.now() + ms;
      while (!out.includes(text)) {
        if (child.exitCode !== null) throw new Error(`client exited (${child.exitCode}) before printing '${text}'\n${out}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`client: no '${text}' within ${ms} ms\n${out}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          wakers.push(() => (clearTimeout(t), r()));
        });
      }
    },
  };
}

/**
 * bob (on `bobAt`) and alice (on `aliceAt`) log in with `bester client`; alice
 * writes to bob through the chat handler and bob answers; both leave.
 */
export async function chat(argv: string[], bobAt: string, aliceAt: string, opts: { cwd: string; env: Record<string, string> }) {
  const bob = client(argv, ["--user", "bob", "--password", "x", "--connect", bobAt], opts);
  const alice = client(argv, ["--user", "alice", "--password", "x", "--connect", aliceAt], opts);
  // A whoami round trip proves each is logged in before anything is sent to it.
  for (const [c, name] of [[bob, "bob"], [alice, "alice"]] as const) {
    c.write('/send builtin {"command":{"type":"whoami"}}\n');
    await c.waitFor(`"username":"${name}"`);
  }
  alice.write("@bob hello bob!\n");
  await bob.waitFor("alice: hello bob!");
  bob.write("@alice hi alice, bob here\n");
  await alice.waitFor("bob: hi alice, bob here");
  alice.write("/quit\n");
  bob.write("/quit\n");
  return { alice: await alice.exited, bob: await bob.exited };
}
