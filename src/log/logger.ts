/**
 * Structured logging to stderr (stdout is kept for command output such as
 * `bester check`). Text lines for people, JSON lines for machines; both
 * carry the same fields.
 * @module
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  with(fields: LogFields): Logger;
  /** Changes level and format in place (used by reload). */
  configure(level: LogLevel, format: LogFormat): void;
  enabled(level: LogLevel): boolean;
}

function textValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? "undefined";
}

export function createLogger(
  level: LogLevel = "info",
  format: LogFormat = "text",
  write: (line: string) => void = (line) => process.stderr.write(line + "\n"),
): Logger {
  const state = { min: RANK[level], format };
  const make = (bound: LogFields): Logger => {
    const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
      if (RANK[lvl] < state.min) return;
      const all = fields ? { ...bound, ...fields } : bound;
      const time = new Date().toISOString();
      if (state.format === "json") {
        const obj: LogFields = { time, level: lvl, msg };
        for (const [k, v] of Object.entries(all)) obj[k] = v instanceof Error ? v.message : v;
        write(JSON.stringify(obj));
        return;
      }
      let line = `${time} ${lvl.toUpperCase().padEnd(5)} ${msg}`;
      for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
      write(line);
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      with: (fields) => make({ ...bound, ...fields }),
      configure(lvl, fmt) {
        state.min = RANK[lvl];
        state.format = fmt;
      },
      enabled: (lvl) => RANK[lvl] >= state.min,
    };
  };
  return make({});
}
