import { expect, test } from 'vitest';
import { LogSink } from '../src/log.js';

const clock = () => new Date('2026-11-29T12:00:00.000Z');

test('text lines: time, level, component, message', () => {
  const lines: string[] = [];
  const logs = new LogSink((l) => void lines.push(l), clock);
  logs.logger().info('monitor: pass 1 checked 2 domain(s)');
  logs.logger('health').warn('database: busy');
  expect(lines).toEqual([
    '2026-11-29T12:00:00.000Z info monitor: pass 1 checked 2 domain(s)\n',
    '2026-11-29T12:00:00.000Z warn health: database: busy\n',
  ]);
});

test('LOG_FORMAT=json: one JSON object a line, a stack kept in its message', () => {
  const lines: string[] = [];
  const logs = new LogSink((l) => void lines.push(l), clock);
  logs.configure({ format: 'json' });
  logs.logger('slack').error('a Slack listener failed: Error: x\n    at f (a.js:1:1)');
  logs.slackLogger('slack').warn('http request failed', new Error('fetch failed'));
  expect(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1)).toBe(true);
  expect(lines.map((l) => JSON.parse(l))).toEqual([
    {
      time: '2026-11-29T12:00:00.000Z',
      level: 'error',
      component: 'slack',
      msg: 'a Slack listener failed: Error: x\n    at f (a.js:1:1)',
    },
    {
      time: '2026-11-29T12:00:00.000Z',
      level: 'warn',
      component: 'slack',
      msg: 'http request failed fetch failed',
    },
  ]);
});

test('tokens, Authorization headers, token= parameters, URL passwords and the configured secrets are never written', () => {
  const lines: string[] = [];
  const logs = new LogSink((l) => void lines.push(l), clock);
  logs.configure({ secrets: ['my-signing-secret-value', 's', null, undefined] });
  const log = logs.logger();
  log.error('bot xoxb-1234-5678-abcdEFGH and app xapp-1-A1-999-deadbeef and user xoxp-1-2-3');
  log.error('headers: {"Authorization":"Bearer xoxb-9"} Basic dXNlcjpwYXNz');
  log.error('POST token=abc123&client_secret=zzz&code=c0de&channel=C1');
  log.error('imaps://reports:hunter2@imap.example.com/INBOX');
  log.error('HMAC key my-signing-secret-value in a message; the letter s stays');
  const all = lines.join('');
  for (const secret of [
    '1234-5678',
    'deadbeef',
    'xoxp-1',
    'xoxb-9',
    'dXNlcjpwYXNz',
    'abc123',
    'zzz',
    'c0de',
    'hunter2',
    'my-signing',
  ])
    expect(all).not.toContain(secret);
  expect(lines).toEqual([
    '2026-11-29T12:00:00.000Z error bot [redacted] and app [redacted] and user [redacted]\n',
    '2026-11-29T12:00:00.000Z error headers: {"Authorization":"Bearer [redacted]"} Basic [redacted]\n',
    '2026-11-29T12:00:00.000Z error POST token=[redacted]&client_secret=[redacted]&code=[redacted]&channel=C1\n',
    '2026-11-29T12:00:00.000Z error imaps://reports:[redacted]@imap.example.com/INBOX\n',
    '2026-11-29T12:00:00.000Z error HMAC key [redacted] in a message; the letter s stays\n',
  ]);
});
