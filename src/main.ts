/**
 * The `bester` command line: parses the subcommand and hands over.
 * @module
 */
import { UsageError } from "./cli/args.ts";
import { BENCH_HELP, benchCommand } from "./cli/bench.ts";
import { checkCommand } from "./cli/check.ts";
import { CTL_HELP, ctlCommand } from "./cli/ctl.ts";
import { CLIENT_HELP, clientCommand, SEND_HELP, sendCommand } from "./cli/client.ts";
import { HANDLER_HELP, handlerCommand } from "./cli/handler.ts";
import { PASSWD_HELP, passwdCommand } from "./cli/passwd.ts";
import { serveCommand } from "./cli/serve.ts";
import { CHECK_HELP, MAIN_HELP, SERVE_HELP, VERSION_HELP } from "./cli/usage.ts";
import { loadRuntime, type Runtime } from "./runtime/index.ts";
import { VERSION } from "./version.ts";

const HELP: Record<string, string> = {
  serve: SERVE_HELP,
  check: CHECK_HELP,
  version: VERSION_HELP,
  passwd: PASSWD_HELP,
  client: CLIENT_HELP,
  send: SEND_HELP,
  handler: HANDLER_HELP,
  bench: BENCH_HELP,
  ctl: CTL_HELP,
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
        console.log(topic ? HELP[topic] : MAIN_HELP);
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
        return await serveCommand(runtime, rest);
      case "check":
        return await checkCommand(rest);
      case "ctl":
        return await ctlCommand(runtime, rest);
      case "passwd":
        return await passwdCommand(runtime, rest);
      case "client":
        return await clientCommand(runtime, rest);
      case "send":
        return await sendCommand(runtime, rest);
      case "handler":
        return await handlerCommand(runtime, rest);
      case "bench":
        // The load generator is part of every round trip it measures.
        runtime.useServerSettings();
        return await benchCommand(runtime, rest);
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
