import { LOG_FORMATS, LOG_LEVELS } from "../config/types.ts";
import { createLogger, type LogFormat, type LogLevel } from "../log/logger.ts";
import { startControlServer } from "../control/server.ts";
import { type HttpServer, ListenError, type Runtime } from "../runtime/types.ts";
import { Gateway } from "../server/gateway.ts";
import { ListenerStartError } from "../server/listeners.ts";
import { VERSION } from "../version.ts";
import { configPathOf, parseCommandArgs, UsageError } from "./args.ts";
import { resolveConfig } from "./config-source.ts";
import { stopRequests } from "../sdk/stop-requests.ts";
import { SERVE_HELP } from "./usage.ts";


export async function serveCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "serve",
    argv,
    {
      config: { type: "string", short: "c" },
      "log-level": { type: "string" },
      "log-format": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    1,
  );
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  const level = values["log-level"];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new UsageError("serve", `--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${level}'`);
  }
  const format = values["log-format"];
  if (format !== undefined && !(LOG_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError("serve", `--log-format must be one of ${LOG_FORMATS.join(", ")}, got '${format}'`);
  }

  const configPath = configPathOf("serve", values.config, positionals);
  const outcome = await resolveConfig(configPath);
  if (!outcome.ok) {
    for (const line of outcome.lines) console.error(line);
    return 1;
  }
  const config = outcome.config;
  const log = createLogger((level as LogLevel) ?? config.log.level, (format as LogFormat) ?? config.log.format);
  log.info("starting", {
    version: VERSION,
    runtime: `${runtime.name} ${runtime.version}`,
    config: config.source ?? "embedded default",
  });
  for (const w of outcome.warnings) log.warn(`config: ${w}`);

  const gateway = new Gateway(runtime, config, log, { level: level as LogLevel | undefined, format: format as LogFormat | undefined });
  let control: HttpServer | undefined;
  // Signals are taken from before start-up, so one that arrives while handlers
  // start still ends in a clean stop rather than the default kill.
  let exitCode: ((code: number) => void) | undefined;
  const finished = new Promise<number>((resolve) => (exitCode = resolve));
  let stopping = false;
  const stop = stopRequests(
    (why) => {
      stopping = true;
      log.info("shutting down", { signal: why });
      gateway
        .stop()
        .then(() => control?.close(true))
        .then(
          () => {
            log.info("stopped");
            exitCode!(0);
          },
          (err) => {
            log.error("shutdown failed", { error: err });
            exitCode!(1);
          },
        );
    },
    (why) => {
      log.warn("second stop request: exiting now", { signal: why });
      exitCode!(1);
    },
  );
  runtime.onSignal("SIGINT", () => stop("SIGINT"));
  runtime.onSignal("SIGTERM", () => stop("SIGTERM"));
  runtime.onSignal("SIGHUP", () => {
    log.info("reloading", { signal: "SIGHUP" });
    gateway.reload().then((r) => {
      if (r.ok) log.info("reload done", { changes: r.changes.length });
      else for (const e of r.errors) log.error("reload refused", { error: e });
    });
  });

  try {
    await gateway.start();
    if (!stopping) control = await startControlServer(gateway, log, () => stop("POST /v1/shutdown"));
  } catch (err) {
    if (err instanceof ListenerStartError) log.error(err.message, { listener: err.kind });
    else if (err instanceof ListenError) log.error(`control API: ${err.message}`);
    else log.error(`cannot start: ${(err as Error).message ?? err}`);
    await gateway.stop();
    return 1;
  }
  if (!stopping) log.info("ready", { pid: process.pid });
  return await finished;
}
