import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { main } from '../../src/cli.js';
import { openDatabase } from '../../src/store/db.js';
import { SubscriptionStore } from '../../src/store/subscriptions.js';

/** `mtasts watch …` through the CLI's entry point, on a database in a temporary directory. */
function cli(env: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const run = async (...argv: string[]) => {
    out.length = 0;
    err.length = 0;
    const code = await main(argv, { env, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) });
    return { code, out: out.join(''), err: err.join('') };
  };
  return run;
}

const SECRET_URL = 'https://hooks.slack.com/services/T0/B0/verysecrettoken';

test('add, list, mute, remove: the watch list in the database npm start reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-watch-'));
  const env = { DATABASE_PATH: join(dir, 'db.sqlite'), MTASTS_WEBHOOKS: `team=${SECRET_URL}` };
  const run = cli(env);
  expect(await run('watch', 'list')).toMatchObject({
    code: 0,
    out: expect.stringContaining('the watch list is empty'),
  });
  expect(await run('watch', 'add', 'Example.COM')).toEqual({
    code: 0,
    out: 'watching example.com: alerts to the log (npm start writes them)\n',
    err: '',
  });
  expect(await run('watch', 'add', 'example.com', '--webhook', 'team')).toMatchObject({
    code: 0,
    out: 'watching example.com: alerts to webhook team\n',
  });
  expect((await run('watch', 'add', 'example.com')).out).toBe(
    'example.com is already watched, alerts to the log\n',
  );
  const muted = await run('watch', 'mute', 'example.com', '2h', '--webhook', 'team');
  expect(muted.out).toMatch(
    /^muted alerts about example\.com to webhook team until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/,
  );
  const list = (await run('watch', 'list')).out.split('\n').filter(Boolean);
  expect(list).toHaveLength(2);
  expect(list[0]).toBe('example.com\tthe log\tnot checked yet\tactive');
  expect(list[1]).toMatch(/^example\.com\twebhook team\tnot checked yet\tmuted until /);
  expect(await run('watch', 'remove', 'example.com')).toMatchObject({
    code: 0,
    out: 'stopped watching example.com (alerts to the log)\n',
  });
  expect(await run('watch', 'remove', 'example.com')).toMatchObject({
    code: 1,
    err: expect.stringContaining('is not watched'),
  });
  const db = openDatabase(env.DATABASE_PATH);
  expect((await new SubscriptionStore(db).watchList()).map((s) => [s.domain, s.channelId])).toEqual([
    ['example.com', 'webhook:team'],
  ]);
  await db.close();
  expect(JSON.stringify(list)).not.toContain('verysecret');
});

test('bad input is one line and exit 2; an unknown webhook names the ones there are, never a URL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtasts-watch-'));
  const run = cli({ DATABASE_PATH: join(dir, 'db.sqlite'), MTASTS_WEBHOOKS: `team=${SECRET_URL}` });
  for (const argv of [
    ['watch', 'add'],
    ['watch', 'add', 'a..b.com'],
    ['watch', 'add', 'example.com', '--webhook', 'nope'],
    ['watch', 'mute', 'example.com', '99y'],
    ['watch', 'frobnicate'],
  ]) {
    const r = await run(...argv);
    expect(r.code, argv.join(' ')).toBe(2);
    expect(r.err.trim().split('\n'), argv.join(' ')).toHaveLength(1);
    expect(r.err).not.toContain('verysecret');
  }
  expect((await run('watch', 'add', 'example.com', '--webhook', 'nope')).err).toContain('it names team');
  const bad = await cli({
    DATABASE_PATH: join(dir, 'db.sqlite'),
    MTASTS_WEBHOOKS: `x=http://example.com/${SECRET_URL}`,
  })('watch', 'list');
  expect(bad.code).toBe(2);
  expect(bad.err).toContain('MTASTS_WEBHOOKS');
  expect(bad.err).not.toContain('verysecret');
});
