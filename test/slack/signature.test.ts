import { createHmac } from 'node:crypto';
import { expect, test } from 'vitest';
import { ReplayMemory, signatureMatches, timestampProblem } from '../../src/slack/signature.js';

const sign = (secret: string, ts: string, body: string) =>
  `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;

test('the signature is HMAC-SHA256 of v0:timestamp:body; anything else is refused', () => {
  const body = Buffer.from('command=%2Fmtasts&text=list');
  const good = sign('s3cret', '1700000000', body.toString());
  expect(signatureMatches('s3cret', '1700000000', body, good)).toBe(true);
  expect(signatureMatches('s3cret', '1700000000', body, good.toUpperCase().replace('V0=', 'v0='))).toBe(true);
  expect(signatureMatches('other', '1700000000', body, good)).toBe(false);
  expect(signatureMatches('s3cret', '1700000001', body, good)).toBe(false);
  expect(signatureMatches('s3cret', '1700000000', Buffer.from(`${body} `), good)).toBe(false);
  for (const bad of [
    '',
    'v0=',
    `v1=${good.slice(3)}`,
    good.slice(0, -1),
    `${good}0`,
    `v0=${'g'.repeat(64)}`,
  ]) {
    expect(signatureMatches('s3cret', '1700000000', body, bad)).toBe(false);
  }
});

test('timestamps: within 5 minutes either way; missing, malformed, past or future beyond it refused', () => {
  const now = 1_700_000_000_000;
  expect(timestampProblem('1700000000', now)).toBeNull();
  expect(timestampProblem('1699999700', now)).toBeNull();
  expect(timestampProblem('1700000300', now)).toBeNull();
  expect(timestampProblem('1699999699', now)).toContain('ago');
  expect(timestampProblem('1700000301', now)).toContain('in the future');
  expect(timestampProblem('1700086400', now)).toContain('in the future');
  for (const bad of [null, '', '-1', '1.5e9', '17000000000000', ' 1700000000', '0x10']) {
    expect(timestampProblem(bad, now)).not.toBeNull();
  }
});

test('the replay memory: a signature once, until its timestamp leaves the window; bounded, refusing when full', () => {
  const memory = new ReplayMemory(3);
  const t = 1_700_000_000;
  const now = t * 1000;
  expect(memory.remember('a', t, now)).toBe('fresh');
  expect(memory.remember('a', t, now + 1000)).toBe('replay');
  expect(memory.remember('b', t, now)).toBe('fresh');
  expect(memory.remember('c', t + 200, now)).toBe('fresh');
  // Full of signatures that are all still valid: a new one is refused, none is forgotten early.
  expect(memory.remember('d', t, now)).toBe('full');
  expect(memory.remember('a', t, now + 2000)).toBe('replay');
  // Once a and b have left the window (301 s after their timestamp), room is made; c is still remembered.
  const later = now + 302_000;
  expect(memory.remember('d', t + 302, later)).toBe('fresh');
  expect(memory.size).toBe(2);
  expect(memory.remember('c', t + 200, later)).toBe('replay');
});
