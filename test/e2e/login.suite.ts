/**
 * Logins through the gateway against real account stores: SQLite, and a
 * real redis-server that goes away and comes back while the gateway runs.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startGateway, tempDir } from "../_harness/gateway.ts";
import { startRedis } from "../_harness/redis.ts";
import type { RuntimeName } from "../_harness/runtimes.ts";
import { authFrame, expectClosed, openWire, type Target } from "../_harness/wire.ts";

/** `bester passwd add USER --config FILE` with the password on stdin. */
async function addUser(runtime: RuntimeName, config: string, user: string, password: string): Promise<number | null> {
  return (await runCli(runtime, ["passwd", "add", user, "--config", config], { input: `${password}\n` })).code;
}

async function attempt(target: Target, user: string, password: string) {
  const wire = await openWire(target);
  wire.send(authFrame(user, password));
  const reply = await wire.next();
  return { wire, reply };
}

export function loginSuite(runtime: RuntimeName) {
  describe(`${runtime}: logins`, () => {
    test("sqlite: the right password gets in, a wrong one or an unknown user does not, and no password is logged", async () => {
      const dir = tempDir();
      const database = { type: "sqlite", sqlite: { path: join(dir, "accounts.db") } };
      const conf = join(dir, "passwd.conf");
      writeFileSync(conf, JSON.stringify({ network: { types: ["unix"], unix: { address: join(dir, "x.sock") } }, database }));
      expect(await addUser(runtime, conf, "alice", "correct horse")).toBe(0);
      const gw = await startGateway(runtime, { database });
      try {
        const good = await attempt(gw.tcp4, "  alice ", "correct horse");
        expect(good.reply.header.status).toBe("good");
        good.wire.close();
        for (const [user, pw] of [
          ["alice", "wrong-password-7731"],
          ["mallory", "guess-password-8842"],
        ] as const) {
          const { wire, reply } = await attempt(gw.tcp4, user, pw);
          expect(reply).toEqual({
            header: {
              status: "bad",
              messageType: "statusReport",
              error: { code: "auth_failed", message: "wrong username or password" },
            },
            payload: { id: "auth_special" },
          });
          await expectClosed(wire);
        }
        await gw.waitForLog((r) => r.msg === "login failed" && r.user === "alice" && r.reason === "bad_password");
        await gw.waitForLog((r) => r.msg === "login failed" && r.user === "mallory" && r.reason === "unknown_user");
        const all = gw.logs.join("\n");
        expect(all).not.toContain("wrong-password-7731");
        expect(all).not.toContain("guess-password-8842");
        expect(all).not.toContain("correct horse");
      } finally {
        await gw.stop();
      }
    });

    test("redis: logins check the original hash layout; Redis down → store_unavailable; back → logins work again", async () => {
      const redis = await startRedis();
      const dir = tempDir();
      const database = { type: "redis", redis: { address: "127.0.0.1", port: redis.port } };
      const conf = join(dir, "passwd.conf");
      writeFileSync(conf, JSON.stringify({ network: { types: ["unix"], unix: { address: join(dir, "x.sock") } }, database }));
      expect(await addUser(runtime, conf, "bob", "hunter2-long")).toBe(0);
      // The original design: one hash per user with a password field.
      expect(redis.cli("HEXISTS", "bob", "password")).toBe("1");
      const gw = await startGateway(runtime, { database });
      let revived: Awaited<ReturnType<typeof startRedis>> | undefined;
      try {
        const first = await attempt(gw.tcp4, "bob", "hunter2-long");
        expect(first.reply.header.status).toBe("good");

        await redis.stop();
        const down = await attempt(gw.tcp4, "bob", "hunter2-long");
        expect(down.reply.header.status).toBe("bad");
        expect(down.reply.header.error.code).toBe("store_unavailable");
        await expectClosed(down.wire);
        // The session that was already in keeps working.
        first.wire.send({ payload: { type: "dummy", id: "still", data: null } });
        expect((await first.wire.next()).payload.id).toBe("still");

        revived = await startRedis(redis.port);
        expect(await addUser(runtime, conf, "bob", "hunter2-long")).toBe(0); // nothing was persisted
        let status = "";
        for (let i = 0; i < 100 && status !== "good"; i++) {
          const again = await attempt(gw.tcp4, "bob", "hunter2-long");
          status = again.reply.header.status;
          again.wire.close();
          if (status !== "good") await new Promise((r) => setTimeout(r, 100));
        }
        expect(status).toBe("good");
        first.wire.close();
      } finally {
        await gw.stop();
        await revived?.stop();
      }
    });

    test("open store on a non-loopback listener is refused at start-up", async () => {
      await expect(
        startGateway(runtime, { network: { types: ["tcp4"], tcp4: { address: "0.0.0.0", port: 0 } } }),
      ).rejects.toThrow(/allowOpenOnNetwork/);
    });
  });
}
