import { expect, test } from 'vitest';
import { ConfigError, loadAppConfig } from '../src/config.js';
import { databaseLabel } from '../src/store/db.js';

const base = { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' };

test('DATABASE_URL: PostgreSQL URLs only, with one line that never repeats the value', () => {
  for (const url of ['mysql://u:hunter2@db/x', 'sqlite:///tmp/x.sqlite', 'not a url hunter2']) {
    let message = '';
    try {
      loadAppConfig({ ...base, DATABASE_URL: url });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      message = err.message;
    }
    expect(message).toMatch(/^DATABASE_URL must /);
    expect(message).not.toContain('hunter2');
  }
  const c = loadAppConfig({ ...base, DATABASE_URL: 'postgresql://bot:hunter2@db.internal:5433/mtasts' });
  expect(c.databaseUrl).toBe('postgresql://bot:hunter2@db.internal:5433/mtasts');
  expect(c.postgres).toEqual({ poolSize: 10, statementTimeoutMs: 30000, connectTimeoutMs: 10000 });
  expect(databaseLabel(c)).toBe('DATABASE_URL postgresql://db.internal:5433/mtasts');
  expect(loadAppConfig(base).databaseUrl).toBeNull();
  expect(databaseLabel(loadAppConfig(base))).toBe('DATABASE_PATH db/mtasts.sqlite');
});
