/**
 * `bester passwd`: manages the accounts of the store the config names.
 * Passwords come from a no-echo prompt or the first line of stdin, never
 * from argv, where `ps` and shell history would keep them.
 * @module
 */
import { createInterface } from "node:readline";
import { checkUsername, openAccountStore, type AccountStore } from "../accounts/index.ts";
import type { Runtime } from "../runtime/types.ts";
import { parseCommandArgs, UsageError } from "./args.ts";
import { resolveConfig } from "./config-source.ts";
import { canPrompt, promptHidden } from "./prompt.ts";

export const PASSWD_HELP = `Usage: bester passwd add USER [--config FILE]      create or change USER's password
       bester passwd remove USER [--config FILE]
       bester passwd list [--config FILE]

Manages the accounts of the store named by the config's "database" block:
"sqlite" (database.sqlite.path) or "redis" (database.redis). The "open" store,
which the embedded default uses, keeps no accounts.

The password is never taken from the command line. On a terminal it is asked
for twice, without echo; otherwise the first line of standard input is used:
  printf '%s\\n' "$PW" | bester passwd add alice --config server.conf

'list' prints one username per line on stdout. Exit 0 on success, 1 if the
store refuses or cannot be reached (why, on stderr), 2 on a usage mistake.
A Redis password not in the config is read from BESTER_REDIS_PASSWORD, as
the gateway does.

Options:
  -c, --config FILE     config file
  -h, --help            show this help`;

const ARGV_PASSWORD =
  "the password is never taken from the command line (ps and shell history would keep it); type it at the prompt or give it on standard input";

const ACTIONS = ["add", "remove", "list"] as const;
type Action = (typeof ACTIONS)[number];

export async function passwdCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "passwd",
    argv,
    {
      config: { type: "string", short: "c" },
      help: { type: "boolean", short: "h" },
      // Accepted only to refuse it with the reason rather than as an unknown option.
      password: { type: "string", short: "p" },
    },
    Number.MAX_SAFE_INTEGER,
  );
  if (values.help) {
    console.log(PASSWD_HELP);
    return 0;
  }
  if (values.password !== undefined) throw new UsageError("passwd", ARGV_PASSWORD);
  const [action, user, ...extra] = positionals;
  if (action === undefined) throw new UsageError("passwd", "missing what to do: add, remove or list");
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError("passwd", `unknown action '${action}' (expected add, remove or list)`);
  }
  if (action === "list") {
    if (user !== undefined) throw new UsageError("passwd", `unexpected argument '${user}'`);
  } else {
    if (user === undefined) throw new UsageError("passwd", `missing USER: bester passwd ${action} USER`);
    if (extra.length > 0) {
      throw new UsageError("passwd", action === "add" ? ARGV_PASSWORD : `unexpected argument '${extra[0]}'`);
    }
    const checked = checkUsername(user);
    if (!checked.ok) throw new UsageError("passwd", `invalid USER ${JSON.stringify(user)}: ${checked.problem}`);
  }

  try {
    return await run(runtime, action as Action, user, values.config);
  } catch (err) {
    console.error(`bester passwd: ${(err as Error).message}`);
    return 1;
  }
}

async function run(runtime: Runtime, action: Action, user: string | undefined, configPath: string | undefined): Promise<number> {
  const outcome = await resolveConfig(configPath);
  if (!outcome.ok) {
    for (const line of outcome.lines) console.error(line);
    return 1;
  }
  for (const w of outcome.warnings) console.error(`warning: ${w}`);
  const { database } = outcome.config;
  if (database.type === "open") {
    throw new Error(
      configPath === undefined
        ? 'no --config given, and the embedded default uses the open account store, which keeps no accounts; pass --config FILE whose database.type is "sqlite" or "redis"'
        : `${configPath}: the open account store keeps no accounts; set database.type to "sqlite" or "redis"`,
    );
  }
  // Opened before asking for the password, so an unreachable store is reported before anyone types.
  const store = await openAccountStore(runtime, database);
  try {
    const health = store.health();
    if (!health.ok) throw new Error(`account store unavailable: ${health.detail}`);
    return await perform(store, action, user!);
  } finally {
    await store.close();
  }
}

async function perform(store: AccountStore, action: Action, rawUser: string): Promise<number> {
  switch (action) {
    case "list": {
      const names = await store.list();
      for (const name of names) console.log(name);
      if (names.length === 0) console.error(`bester passwd: the ${store.kind} store has no accounts`);
      return 0;
    }
    case "remove": {
      const user = rawUser.trim();
      if (!(await store.remove(user))) throw new Error(`no account named ${JSON.stringify(user)}`);
      console.log(`removed ${user}`);
      return 0;
    }
    case "add": {
      const user = rawUser.trim();
      const password = await readPassword(user);
      await store.setPassword(user, password);
      console.log(`password set for ${user}`);
      return 0;
    }
  }
}

/** Twice without echo on a terminal; otherwise the first line of stdin. */
async function readPassword(user: string): Promise<string> {
  let password: string;
  if (canPrompt()) {
    password = await promptHidden(`New password for ${user}: `, "cancelled; nothing changed");
    if (password === "") throw new Error("the password must not be empty; nothing changed");
    const again = await promptHidden("Repeat the password: ", "cancelled; nothing changed");
    if (again !== password) throw new Error("the passwords do not match; nothing changed");
  } else {
    const line = await firstLine();
    if (line === undefined) throw new Error("no password given: standard input was empty (pipe the password as its first line)");
    password = line;
    if (password === "") throw new Error("the password must not be empty; nothing changed");
  }
  return password;
}

function firstLine(): Promise<string | undefined> {
  const rl = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
  return new Promise((resolve) => {
    let got = false;
    rl.once("line", (line) => {
      got = true;
      rl.close();
      resolve(line.replace(/\r$/, ""));
    });
    rl.once("close", () => {
      if (!got) resolve(undefined);
    });
  });
}

