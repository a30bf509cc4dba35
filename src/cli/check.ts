import { redactConfig } from "../config/redact.ts";
import { configPathOf, parseCommandArgs } from "./args.ts";
import { resolveConfig } from "./config-source.ts";
import { CHECK_HELP } from "./usage.ts";

export async function checkCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    "check",
    argv,
    { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    1,
  );
  if (values.help) {
    console.log(CHECK_HELP);
    return 0;
  }
  const outcome = await resolveConfig(configPathOf("check", values.config, positionals));
  if (!outcome.ok) {
    for (const line of outcome.lines) console.error(line);
    return 1;
  }
  for (const w of outcome.warnings) console.error(`warning: ${w}`);
  console.log(JSON.stringify(redactConfig(outcome.config), null, 2));
  return 0;
}
