/**
 * Accounts as an operator meets them: `bester passwd` under each runtime
 * against a real SQLite file and a real redis-server, and the Redis store
 * riding out a Redis restart inside a process of that runtime.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { verifyPassword } from "../../src/accounts/hash.ts";
import { openAccountStore } from "../../src/accounts/index.ts";
import { loadRuntime } from "../../src/runtime/index.ts";
import { runCli, tempDir } from "../_harness/gateway.ts";
import { freePort, redisTlsArgs, startRedis, type RunningRedis } from "../_harness/redis.ts";
import { makeTestCertificate } from "../_harness/tls.ts";
import { ROOT, RUNS_SCRIPTS, RUNTIMES, type RuntimeName } from "../_harness/runtimes.ts";

const runWithInput = (runtime: RuntimeName, args: string[], input: string) => runCli(runtime, args, { input });

type Outcome = { code: number | null; stdout: string; stderr: string };

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`) and types each
 * answer once its prompt has appeared, as a person would.
 */
function runOnTerminal(runtime: RuntimeName, args: string[], answers: Array<[prompt: string, typed: string]>): Promise<Outcome> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = [...RUNTIMES[runtime], ...args].map(quote).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    child.once("error", (err) => reject(new Error(`cannot run util-linux 'script' for a terminal: ${err.message}`)));
    let output = "";
    let next = 0;
    let searchFrom = 0;
    const onOutput = (d: Buffer) => {
      output += d;
      for (;;) {
        if (next >= answers.length) return;
        const [prompt, typed] = answers[next]!;
        const at = output.indexOf(prompt, searchFrom);
        if (at < 0) return;
        // Typed only once the prompt is there: earlier, the terminal would still echo.
        child.stdin!.write(typed + "\r");
        searchFrom = at + prompt.length;
        next++;
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`bester ${args.join(" ")} on a terminal did not finish\n${output}`));
    }, 20000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: output, stderr: output });
    });
  });
}

function writeConfig(dir: string, database: object): string {
  const path = join(dir, "server.conf");
  writeFileSync(
    path,
    JSON.stringify({ network: { types: ["tcp4"], tcp4: { address: "127.0.0.1", port: 0 } }, database }, null, 2),
  );
  return path;
}

/** The argv that runs any script under `runtime` with the same flags as the gateway. */
function scriptCommand(runtime: RuntimeName, script: string): string[] {
  const argv = [...RUNTIMES[runtime]];
  if (!argv.at(-1)!.endsWith("src/main.ts")) throw new Error("RUNTIMES no longer ends with src/main.ts");
  argv[argv.length - 1] = script;
  return argv;
}

/**
 * A long-running process of `runtime` holding one Redis store: each line on
 * its stdin is `{"user","password"}`, each answer line the verify result, the
 * time it took and health().
 */
const PROBE = `
import { createInterface } from "node:readline";
import { openAccountStore } from ${JSON.stringify(join(ROOT, "src/accounts/index.ts"))};
import { createLogger } from ${JSON.stringify(join(ROOT, "src/log/logger.ts"))};
import { loadRuntime } from ${JSON.stringify(join(ROOT, "src/runtime/index.ts"))};
const runtime = await loadRuntime();
const database = JSON.parse(process.argv.at(-1));
const store = await openAccountStore(runtime, database, createLogger("debug", "json"));
console.log(JSON.stringify({ started: runtime.name }));
for await (const line of createInterface({ input: process.stdin })) {
  const { user, password } = JSON.parse(line);
  const start = performance.now();
  const result = await store.verify(user, password);
  console.log(JSON.stringify({ result, ms: performance.now() - start, health: store.health() }));
}
await store.close();
runtime.exit(0);
`;

interface Probe {
  verify(user: string, password: string): Promise<{ result: any; ms: number; health: { ok: boolean; detail: string } }>;
  logs(): any[];
  stop(): Promise<void>;
}

async function startProbe(runtime: RuntimeName, dir: string, database: object): Promise<Probe> {
  const script = join(dir, "probe.ts");
  writeFileSync(script, PROBE);
  const [cmd, ...args] = scriptCommand(runtime, script);
  const child = spawn(cmd!, [...args, JSON.stringify(database)], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const answers: any[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    answers.push(JSON.parse(line));
    waiters.splice(0).forEach((w) => w());
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = async () => {
    const deadline = Date.now() + 15000;
    while (answers.length === 0) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the ${runtime} probe did not answer\n${stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
    return answers.shift();
  };
  expect(await next()).toEqual({ started: runtime });
  return {
    async verify(user, password) {
      child.stdin!.write(JSON.stringify({ user, password }) + "\n");
      return next();
    },
    logs: () =>
      stderr
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l)),
    async stop() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 15000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function accountsSuite(runtime: RuntimeName) {
  describe(`${runtime}: accounts`, () => {
    let redis: RunningRedis;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    test("passwd add/list/remove on a sqlite store; the gateway's store reads what it wrote", async () => {
      const dir = tempDir();
      const config = writeConfig(dir, { type: "sqlite", sqlite: { path: "accounts/bester.db" } });
      const add = await runWithInput(runtime, ["passwd", "add", "alice", "--config", config], "s3cret alice\n");
      expect(add).toMatchObject({ code: 0, stdout: "password set for alice\n" });
      expect(add.stdout + add.stderr).not.toContain("s3cret");
      expect((await runWithInput(runtime, ["passwd", "add", "bob", "-c", config], "bob-pw\nignored second line\n")).code).toBe(0);

      const list = await runCli(runtime, ["passwd", "list", "--config", config]);
      expect(list).toMatchObject({ code: 0, stdout: "alice\nbob\n" });

      // The path is relative to the config file; open it as the gateway would.
      const path = join(dir, "accounts/bester.db");
      const check = async (user: string, password: string) => {
        const store = await openAccountStore(await loadRuntime(), {
          type: "sqlite",
          sqlite: { path },
          redis: { address: "127.0.0.1", port: 6379, prefix: "", tls: false, cluster: false },
          allowOpenOnNetwork: false,
        });
        try {
          return await store.verify(user, password);
        } finally {
          await store.close();
        }
      };
      expect(await check("alice", "s3cret alice")).toEqual({ ok: true, username: "alice" });
      expect(await check("bob", "bob-pw")).toEqual({ ok: true, username: "bob" });
      expect(await check("bob", "ignored second line")).toMatchObject({ ok: false, reason: "bad_password" });

      expect((await runWithInput(runtime, ["passwd", "add", "alice", "-c", config], "changed\r\n")).code).toBe(0);
      expect(await check("alice", "changed")).toEqual({ ok: true, username: "alice" });
      expect(await check("alice", "s3cret alice")).toMatchObject({ ok: false, reason: "bad_password" });

      expect(await runCli(runtime, ["passwd", "remove", "bob", "-c", config])).toMatchObject({ code: 0, stdout: "removed bob\n" });
      const again = await runCli(runtime, ["passwd", "remove", "bob", "-c", config]);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('bester passwd: no account named "bob"');
      expect((await runCli(runtime, ["passwd", "list", "-c", config])).stdout).toBe("alice\n");
    });

    test("passwd on a redis store writes the original layout: a hash per user with a password field", async () => {
      const config = writeConfig(tempDir(), {
        type: "redis",
        redis: { address: "127.0.0.1", port: String(redis.port), prefix: `${runtime}:` },
      });
      expect((await runWithInput(runtime, ["passwd", "add", "carol", "-c", config], "carol-pw\n")).code).toBe(0);
      expect((await runWithInput(runtime, ["passwd", "add", "dave", "-c", config], "dave-pw\n")).code).toBe(0);
      const stored = redis.cli("HGET", `${runtime}:carol`, "password");
      expect(stored).toMatch(/^scrypt\$16384\$8\$1\$/);
      expect(await verifyPassword("carol-pw", stored)).toBe(true);

      expect(await runCli(runtime, ["passwd", "list", "-c", config])).toMatchObject({ code: 0, stdout: "carol\ndave\n" });
      expect(await runCli(runtime, ["passwd", "remove", "carol", "-c", config])).toMatchObject({ code: 0 });
      expect(redis.cli("EXISTS", `${runtime}:carol`)).toBe("0");
      expect((await runCli(runtime, ["passwd", "list", "-c", config])).stdout).toBe("dave\n");
    });

    test("a password on the command line is refused and nothing is stored", async () => {
      const dir = tempDir();
      const config = writeConfig(dir, { type: "sqlite" });
      for (const args of [
        ["passwd", "add", "eve", "hunter2", "-c", config],
        ["passwd", "add", "eve", "--password", "hunter2", "-c", config],
        ["passwd", "add", "eve", "-p", "hunter2", "-c", config],
      ]) {
        const out = await runCli(runtime, args, { input: "from-stdin\n" });
        expect(out.code).toBe(2);
        expect(out.stderr).toContain("the password is never taken from the command line");
        expect(out.stderr).toContain("bester passwd --help");
      }
      const list = await runCli(runtime, ["passwd", "list", "-c", config]);
      expect(list).toMatchObject({ code: 0, stdout: "" });
    });

    test("the open store keeps no accounts: passwd says so, exit 1", async () => {
      const none = await runWithInput(runtime, ["passwd", "add", "frank"], "pw\n");
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("the embedded default uses the open account store, which keeps no accounts");
      const config = writeConfig(tempDir(), { type: "open" });
      const open = await runCli(runtime, ["passwd", "list", "--config", config]);
      expect(open.code).toBe(1);
      expect(open.stderr).toContain(`${config}: the open account store keeps no accounts; set database.type to "sqlite" or "redis"`);
    });

    test("no password, an empty one, or a usage mistake: a clear message and the right exit code", async () => {
      const config = writeConfig(tempDir(), { type: "sqlite" });
      const empty = await runWithInput(runtime, ["passwd", "add", "gina", "-c", config], "");
      expect(empty.code).toBe(1);
      expect(empty.stderr).toContain("no password given: standard input was empty");
      const blank = await runWithInput(runtime, ["passwd", "add", "gina", "-c", config], "\n");
      expect(blank.code).toBe(1);
      expect(blank.stderr).toContain("the password must not be empty");
      const badName = await runWithInput(runtime, ["passwd", "add", "  ", "-c", config], "pw\n");
      expect(badName.code).toBe(2);
      expect(badName.stderr).toContain("username is empty");
      for (const [args, text] of [
        [["passwd"], "missing what to do: add, remove or list"],
        [["passwd", "rename", "x"], "unknown action 'rename'"],
        [["passwd", "remove"], "missing USER"],
        [["passwd", "list", "extra"], "unexpected argument 'extra'"],
      ] as const) {
        const out = await runCli(runtime, [...args, "-c", config]);
        expect(out.code).toBe(2);
        expect(out.stderr).toContain(text);
      }
      expect((await runCli(runtime, ["passwd", "list", "-c", config])).stdout).toBe("");
      const help = await runCli(runtime, ["passwd", "--help"]);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("Usage: bester passwd add USER");
    });

    test("on a terminal the password is asked twice without echo, and must match", async () => {
      const config = writeConfig(tempDir(), { type: "sqlite" });
      const mismatch = await runOnTerminal(runtime, ["passwd", "add", "hank", "-c", config], [
        ["New password for hank: ", "first-try"],
        ["Repeat the password: ", "first-trx"],
      ]);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stdout).toContain("the passwords do not match; nothing changed");
      expect(mismatch.stdout).not.toContain("first-try");
      const ok = await runOnTerminal(runtime, ["passwd", "add", "hank", "-c", config], [
        ["New password for hank: ", "typed-pw"],
        ["Repeat the password: ", "typed-pw"],
      ]);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain("password set for hank");
      expect(ok.stdout).not.toContain("typed-pw"); // not echoed
      expect((await runCli(runtime, ["passwd", "list", "-c", config])).stdout).toBe("hank\n");
    });

    test("a redis behind an ACL user and TLS: passwd works with the right credentials and CA, and says what is wrong otherwise", async () => {
      const dir = tempDir();
      const tls = makeTestCertificate(dir, "redis");
      const tlsPort = await freePort();
      // The plain port stays for the harness's checks; the store is pointed at the TLS one.
      const own = await startRedis(undefined, 10000, [
        ...redisTlsArgs(tlsPort, tls),
        "--user", "default", "off",
        "--user", "bester", "on", ">bester-redis-pw", "~*", "&*", "+@all",
      ]);
      try {
        const env = (password?: string) => {
          const e = { ...process.env };
          delete e.BESTER_REDIS_PASSWORD;
          return password === undefined ? e : { ...e, BESTER_REDIS_PASSWORD: password };
        };
        const redisBlock = { address: "127.0.0.1", port: tlsPort, username: "bester", tls: true, caFile: "redis-ca.pem" };
        const config = writeConfig(dir, { type: "redis", redis: redisBlock });
        const add = await runCli(runtime, ["passwd", "add", "kate", "-c", config], { input: "kate-pw\n", env: env("bester-redis-pw") });
        expect(add).toMatchObject({ code: 0, stdout: "password set for kate\n" });
        const stored = own.cli("--user", "bester", "--pass", "bester-redis-pw", "--no-auth-warning", "HGET", "kate", "password");
        expect(await verifyPassword("kate-pw", stored)).toBe(true);
        const where = `redis at 127.0.0.1:${tlsPort}`;

        const wrong = await runCli(runtime, ["passwd", "list", "-c", config], { env: env("not-it") });
        expect(wrong.code).toBe(1);
        expect(wrong.stderr).toContain(`account store unavailable: ${where} refused the username and password (WRONGPASS`);
        expect(wrong.stderr).not.toContain("not-it");

        const none = await runCli(runtime, ["passwd", "list", "-c", config], { env: env() });
        expect(none.code).toBe(1);
        expect(none.stderr).toContain("database.redis.username: needs a password");

        const { username: _u, ...anonymous } = redisBlock;
        const noAuth = await runCli(runtime, ["passwd", "list", "-c", writeConfig(dir, { type: "redis", redis: anonymous })], { env: env() });
        expect(noAuth.code).toBe(1);
        expect(noAuth.stderr).toContain(`account store unavailable: ${where} requires a password and none is set`);

        // In the file instead of the environment; without the CA, the certificate is not trusted.
        const { caFile: _ca, ...noCa } = redisBlock;
        const untrusted = writeConfig(tempDir(), { type: "redis", redis: { ...noCa, password: "bester-redis-pw" } });
        const refused = await runCli(runtime, ["passwd", "list", "-c", untrusted], { env: env() });
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`account store unavailable: ${where} is not reachable (`);
        expect(refused.stderr).toMatch(/certificate/i);

        const plain = writeConfig(tempDir(), { type: "redis", redis: { address: "127.0.0.1", port: tlsPort, password: "x" } });
        const noTls = await runCli(runtime, ["passwd", "list", "-c", plain], { env: env() });
        expect(noTls.code).toBe(1);
        expect(noTls.stderr).toContain(`account store unavailable: ${where} is not reachable (`);

        const right = writeConfig(dir, { type: "redis", redis: { ...redisBlock, password: "bester-redis-pw" } });
        expect(await runCli(runtime, ["passwd", "list", "-c", right], { env: env() })).toMatchObject({ code: 0, stdout: "kate\n" });
      } finally {
        await own.stop();
      }
    });

    test("redis not reachable: passwd fails at once with the address and the reason", async () => {
      const port = await freePort();
      const config = writeConfig(tempDir(), { type: "redis", redis: { address: "127.0.0.1", port } });
      const start = Date.now();
      const out = await runWithInput(runtime, ["passwd", "add", "ivan", "-c", config], "pw\n");
      expect(out.code).toBe(1);
      expect(out.stderr).toContain(
        `bester passwd: account store unavailable: redis at 127.0.0.1:${port} is not reachable (connect ECONNREFUSED 127.0.0.1:${port})`,
      );
      expect(Date.now() - start).toBeLessThan(10000);
    });

    // The probe is a script of its own; the binary runs only its compiled entry (RUNS_SCRIPTS).
    test.skipIf(!RUNS_SCRIPTS[runtime])(`the redis store in a ${runtime} process rides out a hung redis and a redis restart`, async () => {
      const own = await startRedis();
      const dir = tempDir();
      const database = { type: "redis", redis: { address: "127.0.0.1", port: own.port, prefix: "" }, sqlite: { path: "" }, allowOpenOnNetwork: false };
      const config = writeConfig(dir, { type: "redis", redis: { address: "127.0.0.1", port: own.port } });
      expect((await runWithInput(runtime, ["passwd", "add", "judy", "-c", config], "pw1\n")).code).toBe(0);
      const probe = await startProbe(runtime, dir, database);
      let back: RunningRedis | undefined;
      try {
        expect((await probe.verify("judy", "pw1")).result).toEqual({ ok: true, username: "judy" });
        expect((await probe.verify("judy", "pw2")).result).toMatchObject({ ok: false, reason: "bad_password" });
        expect((await probe.verify("kim", "pw1")).result).toMatchObject({ ok: false, reason: "unknown_user" });

        // Hung: connected, but no answer.
        process.kill(own.pid, "SIGSTOP");
        try {
          const hung = await probe.verify("judy", "pw1");
          expect(hung.result).toEqual({
            ok: false,
            reason: "unavailable",
            message: `account store unavailable: redis at 127.0.0.1:${own.port} did not answer within 1000 ms`,
          });
          expect(hung.ms).toBeGreaterThan(900);
          expect(hung.ms).toBeLessThan(3000);
        } finally {
          process.kill(own.pid, "SIGCONT");
        }
        await poll("answers again after SIGCONT", async () => ((await probe.verify("judy", "pw1")).result.ok ? true : undefined));

        await own.stop();
        const down = await poll("verify says unavailable", async () => {
          const answer = await probe.verify("judy", "pw1");
          return answer.result.reason === "unavailable" && answer.result.message.includes("ECONNREFUSED") ? answer : undefined;
        });
        expect(down.result.message).toBe(
          `account store unavailable: redis at 127.0.0.1:${own.port} is not reachable (connect ECONNREFUSED 127.0.0.1:${own.port})`,
        );
        expect(down.ms).toBeLessThan(500); // not queued, not waiting for the 1000 ms deadline
        expect(down.health.ok).toBe(false);

        back = await startRedis(own.port);
        // Nothing was persisted: give judy a password again on the new Redis.
        expect((await runWithInput(runtime, ["passwd", "add", "judy", "-c", config], "pw3\n")).code).toBe(0);
        const up = await poll("the store reconnects by itself", async () => {
          const answer = await probe.verify("judy", "pw3");
          return answer.result.ok ? answer : undefined;
        });
        expect(up.health).toEqual({ ok: true, detail: `redis at 127.0.0.1:${own.port}` });
      } finally {
        await probe.stop();
        await back?.stop();
        await own.stop();
      }
      const logs = probe.logs().map((r) => r.msg);
      // Once for the hang, once for the restart; never once per retry.
      expect(logs.filter((m) => m === "account store lost redis")).toHaveLength(2);
      expect(logs.filter((m) => m === "account store reconnected to redis")).toHaveLength(2);
    });
  });
}
