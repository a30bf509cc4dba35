/**
 * The `bester` command line: parses the subcommand and hands over.
 * @module
 */
import { UsageError } from "./cli/args.ts";
import { CHECK_HELP, MAIN_HELP, SERVE_HELP, VERSION_HELP } from "./cli/usage.ts";
import { loadRuntime, type Runtime } from "./runtime/index.ts";
import { VERSION } from "./version.ts";

// Each command's module is loaded when that command runs: a start then
// evaluates only what it uses (a handler process does not build the control
// API), and `serve` on Bun starts again in place before loading the gateway.
const HELP: Record<string, () => string | Promise<string>> = {
  serve: () => SERVE_HELP,
  check: () => CHECK_HELP,
  version: () => VERSION_HELP,
  passwd: async () => (await import("./cli/passwd.ts")).PASSWD_HELP,
  client: async () => (await import("./cli/client.ts")).CLIENT_HELP,
  send: async () => (await import("./cli/client.ts")).SEND_HELP,
  handler: async () => (await import("./cli/handler.ts")).HANDLER_HELP,
  bench: async () => (await import("./cli/bench.ts")).BENCH_HELP,
  ctl: async () => (await import("./cli/ctl.ts")).CTL_HELP,
};

async function main(runtime: Runtime, argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h": {
        const topic = command === "help" ? rest[0] : undefined;
        if (topic !== undefined && !(topic in HELP)) throw new UsageError("help", `unknown command '${topic}'`);
        console.log(topic ? await HELP[topic]!() : MAIN_HELP);
        return 0;
      }
      case "version":
      case "--version":
      case "-V":
        if (rest.includes("--help") || rest.includes("-h")) {
          console.log(VERSION_HELP);
          return 0;
        }
        if (rest.length > 0) throw new UsageError("version", `unexpected argument '${rest[0]}'`);
        console.log(`bester ${VERSION} (${runtime.name} ${runtime.version})`);
        return 0;
      case "serve":
        runtime.useServerSettings();
        return await (await import("./cli/serve.ts")).serveCommand(runtime, rest);
      case "check":
        return await (await import("./cli/check.ts")).checkCommand(rest);
      case "ctl":
        return await (await import("./cli/ctl.ts")).ctlCommand(runtime, rest);
      case "passwd":
        return await (await import("./cli/passwd.ts")).passwdCommand(runtime, rest);
      case "client":
        return await (await import("./cli/client.ts")).clientCommand(runtime, rest);
      case "send":
        return await (await import("./cli/client.ts")).sendCommand(runtime, rest);
      case "handler":
        return await (await import("./cli/handler.ts")).handlerCommand(runtime, rest);
      case "bench":
        // The load generator is part of every round trip it measures.
        runtime.useServerSettings();
        return await (await import("./cli/bench.ts")).benchCommand(runtime, rest);
      default:
        throw new UsageError("", `unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      const where = err.command ? `bester ${err.command}` : "bester";
      console.error(`${where}: ${err.message}`);
      console.error(`Run '${where} --help' for usage.`);
      return 2;
    }
    throw err;
  }
}

const runtime = await loadRuntime();
main(runtime, process.argv.slice(2)).then(
  (code) => runtime.exit(code),
  (err) => {
    console.error(`bester: ${(err as Error)?.stack ?? err}`);
    runtime.exit(1);
  },
);
