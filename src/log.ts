import type { Logger as SlackLibraryLogger, LogLevel as SlackLogLevel } from '@slack/bolt';
import type { Logger } from './monitor/deliver.js';

/** `text`: one human line per entry (time, level, message); `json`: one JSON object a line, for a log shipper. */
export type LogFormat = 'text' | 'json';
export type LogLevel = 'info' | 'warn' | 'error';

/** Shapes of credentials that must never reach a log, whatever a message or a library puts in it. */
const CREDENTIAL_SHAPES: [RegExp, string][] = [
  [/\bx(?:ox[a-z]|app)-[A-Za-z0-9-]+/g, '[redacted]'],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\b(token|client_secret|secret|password|code)=[^&\s"']+/gi, '$1=[redacted]'],
  [/(\/\/[^/\s:@]+):[^/\s@]+@/g, '$1:[redacted]@'],
];

/** Secrets shorter than this are not searched for literally (a test's one-letter secret would blank every "s"). */
const MIN_SECRET_LENGTH = 8;

/**
 * Where the app's log lines go: standard error, as text or JSON lines. Every line passes through redact() first:
 * Slack tokens, Authorization headers, `token=`-style parameters, passwords in URLs, and the configured secrets
 * themselves (the signing secret, OAuth secrets, the IMAP password) are replaced by `[redacted]`.
 */
export class LogSink {
  private format: LogFormat = 'text';
  private secrets: string[] = [];

  constructor(
    private readonly write: (line: string) => void = (line) => void process.stderr.write(line),
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Set once the settings are read: the format, and the secrets to blank out wherever they appear. */
  configure(options: { format?: LogFormat; secrets?: readonly (string | null | undefined)[] }): void {
    if (options.format) this.format = options.format;
    if (options.secrets) {
      this.secrets = options.secrets
        .filter((s): s is string => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)
        .sort((a, b) => b.length - a.length);
    }
  }

  get logFormat(): LogFormat {
    return this.format;
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('[redacted]');
    for (const [shape, replacement] of CREDENTIAL_SHAPES) out = out.replace(shape, replacement);
    return out;
  }

  /** Writes one entry; `component` names the part of the app it comes from (a field in JSON, a prefix in text). */
  entry(level: LogLevel, message: string, component?: string): void {
    const msg = this.redact(message);
    const time = this.clock().toISOString();
    if (this.format === 'json') {
      this.write(`${JSON.stringify({ time, level, ...(component ? { component } : {}), msg })}\n`);
    } else {
      this.write(`${time} ${level} ${component ? `${component}: ` : ''}${msg}\n`);
    }
  }

  /** A logger for the app's own code (messages carry their own "monitor: …" prefixes). */
  logger(component?: string): Logger {
    return {
      info: (m) => this.entry('info', m, component),
      warn: (m) => this.entry('warn', m, component),
      error: (m) => this.entry('error', m, component),
    };
  }

  /**
   * The logger Bolt and its Socket Mode and Web API clients take (@slack/logger's shape; a type import, so this module
   * loads no Slack code). Debug lines are dropped.
   */
  slackLogger(component: string): SlackLibraryLogger {
    const text = (parts: unknown[]) =>
      parts.map((p) => (p instanceof Error ? p.message : String(p))).join(' ');
    let name = component;
    return {
      debug: () => {},
      info: (...m: unknown[]) => this.entry('info', text(m), name),
      warn: (...m: unknown[]) => this.entry('warn', text(m), name),
      error: (...m: unknown[]) => this.entry('error', text(m), name),
      setLevel: () => {},
      getLevel: () => 'info' as SlackLogLevel,
      setName: (n: string) => {
        name = `${component}/${n}`;
      },
    };
  }
}

/** The process's log sink (standard error). */
export const logs = new LogSink();

/** Lines on standard error in the configured format: what the app and the monitor log. */
export function consoleLogger(component?: string): Logger {
  return logs.logger(component);
}
