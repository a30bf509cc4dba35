import { defaultRunDir, embeddedDefaultConfig } from "../config/defaults.ts";
import { formatIssue, loadConfigFile } from "../config/load.ts";
import type { Config } from "../config/types.ts";

export type ConfigOutcome = { ok: true; config: Config; warnings: string[] } | { ok: false; lines: string[] };

/** The config a command runs with: the file given, or the embedded default. */
export async function resolveConfig(path: string | undefined): Promise<ConfigOutcome> {
  if (path === undefined) return { ok: true, config: embeddedDefaultConfig(defaultRunDir()), warnings: [] };
  const result = await loadConfigFile(path);
  if (result.ok) return result;
  const count = result.errors.length;
  return {
    ok: false,
    lines: [
      `bester: ${path}: ${count} problem${count === 1 ? "" : "s"} in the config`,
      ...result.errors.map((i) => `  ${formatIssue(i)}`),
      ...result.warnings.map((w) => `  warning: ${w}`),
    ],
  };
}
