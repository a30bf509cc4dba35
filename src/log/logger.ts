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

interface LoggerState {
  min: number;
  format: LogFormat;
  write: (line: string) => void;
}

/**
 * Methods on the prototype, not closures: a logger is made for every
 * connection, and idle connections are many.
 */
class BoundLogger implements Logger {
  constructor(
    private readonly state: LoggerState,
    private readonly bound: LogFields,
  ) {}

  debug(msg: string, fields?: LogFields): void {
    this.#emit("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#emit("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#emit("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#emit("error", msg, fields);
  }
  with(fields: LogFields): Logger {
    return new BoundLogger(this.state, { ...this.bound, ...fields });
  }
  configure(level: LogLevel, format: LogFormat): void {
    this.state.min = RANK[level];
    this.state.format = format;
  }
  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.state.min;
  }

  #emit(level: LogLevel, msg: string, fields?: LogFields): void {
    const state = this.state;
    if (RANK[level] < state.min) return;
    const all = fields ? { ...this.bound, ...fields } : this.bound;
    const time = new Date().toISOString();
    if (state.format === "json") {
      const obj: LogFields = { time, level, msg };
      for (const [k, v] of Object.entries(all)) obj[k] = v instanceof Error ? v.message : v;
      state.write(JSON.stringify(obj));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
    state.write(line);
  }
}

export function createLogger(
  level: LogLevel = "info",
  format: LogFormat = "text",
  write: (line: string) => void = (line) => process.stderr.write(line + "\n"),
): Logger {
  return new BoundLogger({ min: RANK[level], format, write }, {});
}
