import type { Logger } from './monitor/deliver.js';

/** Timestamped lines on stderr: what the app and the monitor log. */
export function consoleLogger(): Logger {
  const line = (level: string, message: string) =>
    process.stderr.write(`${new Date().toISOString()} ${level} ${message}\n`);
  return {
    info: (m: string) => line('info', m),
    warn: (m: string) => line('warn', m),
    error: (m: string) => line('error', m),
  };
}
