import { describe, expect, test } from 'vitest';
import { parseWebhooks } from '../../src/webhooks/destinations.js';

describe('MTASTS_WEBHOOKS', () => {
  test.each([
    ['', []],
    [
      'team=https://hooks.slack.com/services/T0/B0/XXXX',
      [{ name: 'team', kind: 'slack', url: 'https://hooks.slack.com/services/T0/B0/XXXX' }],
    ],
    [
      'ops=https://discord.com/api/webhooks/123/abc, ops-slack=https://discord.com/api/webhooks/123/abc/slack',
      [
        { name: 'ops', kind: 'discord', url: 'https://discord.com/api/webhooks/123/abc' },
        { name: 'ops-slack', kind: 'slack', url: 'https://discord.com/api/webhooks/123/abc/slack' },
      ],
    ],
    [
      'mm=https://chat.example.com/hooks/xyz123',
      [{ name: 'mm', kind: 'mattermost', url: 'https://chat.example.com/hooks/xyz123' }],
    ],
    [
      'any=json:https://alerts.example.com/in?a=1&b=2 , local=mattermost:http://127.0.0.1:8065/x',
      [
        { name: 'any', kind: 'json', url: 'https://alerts.example.com/in?a=1&b=2' },
        { name: 'local', kind: 'mattermost', url: 'http://127.0.0.1:8065/x' },
      ],
    ],
  ])('%j', (text, webhooks) => {
    expect(parseWebhooks(text)).toEqual({ ok: true, webhooks });
  });

  test.each([
    ['https://hooks.slack.com/services/T0/B0/SECRET1', 'entry 1 must be name=url'],
    ['a b=https://hooks.slack.com/services/T0/B0/SECRET1', 'entry 1 must be name=url'],
    ['x=teams:https://example.com/SECRET1', 'webhook "x": unknown kind "teams"'],
    ['x=not a url SECRET1', 'webhook "x": not a URL'],
    ['x=http://hooks.slack.com/services/SECRET1', 'webhook "x": the URL must be https://'],
    ['x=https://example.com/in/SECRET1', 'webhook "x": its kind cannot be told from the URL'],
    [
      'x=https://hooks.slack.com/services/SECRET1,x=https://hooks.slack.com/services/SECRET2',
      'names the webhook "x" twice',
    ],
  ])('%j is refused without repeating the URL', (text, error) => {
    const r = parseWebhooks(text);
    expect(r.ok).toBe(false);
    const message = r.ok ? '' : r.error;
    expect(message).toContain(error);
    expect(message).not.toContain('SECRET');
  });
});
