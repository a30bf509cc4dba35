import { parseArgs, type ParseArgsConfig } from "node:util";
import { readNamedFile } from "../config/named-file.ts";
import type { TlsClientOptions } from "../runtime/types.ts";

/** A mistake in how the command was called: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
  constructor(
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

/** parseArgs with bester's error wording; `allowPositionals` caps at `maxPositionals`. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig["options"]>>(
  command: string,
  argv: string[],
  options: T,
  maxPositionals: number,
) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    // node:util's messages are good but long; keep the first sentence.
    const text = (err as Error).message.split(". ")[0]!.replace(/\.$/, "");
    throw new UsageError(command, text);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(command, `unexpected argument '${parsed.positionals[maxPositionals]}'`);
  }
  return parsed;
}

/** The config path from `--config FILE` or the original positional form, not both. */
export function configPathOf(command: string, flag: string | undefined, positionals: string[]): string | undefined {
  if (flag !== undefined && positionals.length > 0) {
    throw new UsageError(command, `give the config file once: --config ${flag} and '${positionals[0]}' both given`);
  }
  return flag ?? positionals[0];
}

/** `--tls` / `--ca FILE` (which implies --tls): undefined without either; the CA is read now, a file it cannot read is a usage mistake. */
export function tlsFlagsOf(command: string, flags: { tls?: boolean; ca?: string }): TlsClientOptions | undefined {
  if (flags.ca === undefined) return flags.tls ? {} : undefined;
  try {
    return { ca: readNamedFile("--ca", flags.ca) };
  } catch (err) {
    throw new UsageError(command, (err as Error).message);
  }
}
