/**
 * Logging for the CLI and the library: four levels, text or JSON lines, to stderr by
 * default. A {@link Logger} is passed down (never a global), so a script embedding
 * several VMs can give each its own.
 *
 * @module
 */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Structured fields attached to a log entry. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** Where log entries go. */
export interface Logger {
  /** The least severe level written. */
  readonly level: LogLevel;
  /** Whether entries at `level` are written. */
  enabled(level: LogLevel): boolean;
  /** Writes `msg` with `fields` at `level`, if that level is enabled. */
  log(level: LogLevel, msg: string, fields?: LogFields): void;
  /** `log("error", ...)`: the VM or a request failed. */
  error(msg: string, fields?: LogFields): void;
  /** `log("warn", ...)`: something went wrong and the VM goes on (a device fault). */
  warn(msg: string, fields?: LogFields): void;
  /** `log("info", ...)`: lifecycle steps (created, started, paused, snapshot written). */
  info(msg: string, fields?: LogFields): void;
  /** `log("debug", ...)`: detail for finding a fault. */
  debug(msg: string, fields?: LogFields): void;
  /**
   * A result the user asked for (a snapshot written, boot timings): written at any level,
   * as `denovm: msg` in text and with level "notice" in JSON.
   */
  notice(msg: string, fields?: LogFields): void;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Entries less severe than this are dropped (default "warn"). */
  level?: LogLevel;
  /** One JSON object a line (`time`, `level`, `msg`, then the fields) instead of text. */
  json?: boolean;
  /** Where each line goes (default: stderr). */
  write?: (line: string) => void;
}

/** Parses a `--log-level` value. */
export function parseLogLevel(s: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(s)) {
    throw new TypeError(
      `--log-level expects one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(s)}`,
    );
  }
  return s as LogLevel;
}

function stderrLine(line: string): void {
  const b = new TextEncoder().encode(line + "\n");
  let o = 0;
  while (o < b.byteLength) o += Deno.stderr.writeSync(b.subarray(o));
}

function fieldText(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/**
 * A logger writing text (`denovm: warn: message key=value`) or JSON lines.
 *
 * @example
 * ```ts
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "info", json: true, write: (l) => lines.push(l) });
 * log.info("vm created", { vcpus: 1 });
 * log.debug("dropped");
 * console.assert(lines.length === 1 && JSON.parse(lines[0]!).vcpus === 1);
 * ```
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "warn";
  const max = LOG_LEVELS.indexOf(level);
  const write = opts.write ?? stderrLine;
  const enabled = (l: LogLevel) => LOG_LEVELS.indexOf(l) <= max;
  const emit = (l: LogLevel | "notice", msg: string, fields: LogFields = {}) => {
    const defined = Object.entries(fields).filter((e): e is [string, string | number | boolean] =>
      e[1] !== undefined
    );
    if (opts.json) {
      write(JSON.stringify({
        time: new Date().toISOString(),
        level: l,
        msg,
        ...Object.fromEntries(defined),
      }));
    } else {
      const extra = defined.map(([k, v]) => ` ${k}=${fieldText(v)}`).join("");
      write(`denovm: ${l === "notice" ? "" : `${l}: `}${msg}${extra}`);
    }
  };
  const log = (l: LogLevel, msg: string, fields?: LogFields) => {
    if (enabled(l)) emit(l, msg, fields);
  };
  return {
    level,
    enabled,
    log,
    error: (m, f) => log("error", m, f),
    warn: (m, f) => log("warn", m, f),
    info: (m, f) => log("info", m, f),
    debug: (m, f) => log("debug", m, f),
    notice: (m, f) => emit("notice", m, f),
  };
}

/** A logger that drops everything (the library's default). */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
