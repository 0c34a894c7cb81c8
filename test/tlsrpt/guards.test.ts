import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { clientKey } from '../../src/core/net/client-key.js';
import { DiskGuard, RateLimiter } from '../../src/tlsrpt/guards.js';

/**
 * The intake's guards, with the clock passed in: token buckets per client and per domain (Retry-After in whole
 * seconds), the key a client is limited by, and the free-space check.
 */

const S = 1000;

describe('RateLimiter: a token bucket per key', () => {
  // 6 tokens a minute (one every 10 s), 3 at most.
  const rate = { perMinute: 6, burst: 3 };

  test('a burst of 3 is allowed at once; the 4th waits the 10 s one token takes', () => {
    const limiter = new RateLimiter(rate);
    expect([0, 0, 0, 0].map(() => limiter.take(['a'], 0))).toEqual([0, 0, 0, 10]);
  });

  test('tokens come back over time, and the wait is what is missing, rounded up to a whole second', () => {
    const limiter = new RateLimiter(rate);
    for (let i = 0; i < 3; i++) limiter.take(['a'], 0);
    expect(limiter.take(['a'], 1 * S)).toBe(9);
    expect(limiter.take(['a'], 5 * S)).toBe(5);
    expect(limiter.take(['a'], 9.5 * S)).toBe(1);
    expect(limiter.take(['a'], 10 * S)).toBe(0);
    expect(limiter.take(['a'], 10 * S)).toBe(10);
    expect(limiter.take(['a'], 25 * S)).toBe(0);
    // 0.5 token was left at 25 s: the next is there at 30 s.
    expect(limiter.take(['a'], 25 * S)).toBe(5);
    expect(limiter.take(['a'], 30 * S)).toBe(0);
  });

  test('a refused request takes nothing', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 });
    expect(limiter.take(['a'], 0)).toBe(0);
    const waits = [0, 2.5, 5, 7.5].map((t) => limiter.take(['a'], t * S));
    expect(waits).toEqual([10, 8, 5, 3]);
    expect(limiter.take(['a'], 10 * S)).toBe(0);
  });

  test('a bucket holds no more than its burst, however long it was left alone', () => {
    const limiter = new RateLimiter(rate);
    limiter.take(['a'], 0);
    const later = 3600 * S;
    expect([0, 0, 0, 0].map(() => limiter.take(['a'], later))).toEqual([0, 0, 0, 10]);
  });

  test('Retry-After is at least 1 s, also when a token is a fraction of a second away', () => {
    const limiter = new RateLimiter({ perMinute: 600, burst: 1 });
    expect(limiter.take(['a'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(1);
    expect(limiter.take(['a'], 50)).toBe(1);
    expect(limiter.take(['a'], 100)).toBe(0);
  });

  test('Retry-After for a slow rate: one token an hour', () => {
    const limiter = new RateLimiter({ perMinute: 1 / 60, burst: 1 });
    expect(limiter.take(['a'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(3600);
    expect(limiter.take(['a'], 1800 * S)).toBe(1800);
  });

  test('keys are apart: one client spending its burst leaves the others theirs', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 });
    expect(limiter.take(['a'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(10);
    expect(limiter.take(['b'], 0)).toBe(0);
  });

  test('several keys (the domains of one report): all must have a token, and then each gives one', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 2 });
    expect(limiter.take(['a', 'b'], 0)).toBe(0);
    expect(limiter.take(['b'], 0)).toBe(0);
    // b is empty: nothing is taken from a either.
    expect(limiter.take(['a', 'b'], 0)).toBe(10);
    expect(limiter.take(['a'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(10);
    // The wait is that of the emptiest bucket.
    expect(limiter.take(['a', 'b'], 4 * S)).toBe(6);
    expect(limiter.take([], 0)).toBe(0);
  });

  test('a clock that goes back refills nothing, and the refill goes on from the latest time seen', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 });
    expect(limiter.take(['a'], 60 * S)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(10);
    expect(limiter.take(['a'], 65 * S)).toBe(5);
    expect(limiter.take(['a'], 70 * S)).toBe(0);
  });

  test('past maxKeys the least recently used bucket is forgotten (it comes back full)', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 }, 2);
    limiter.take(['a'], 0);
    limiter.take(['b'], 0);
    expect(limiter.take(['a'], 0)).toBe(10);
    // c is a third key: b, used least recently, goes; a is still limited.
    expect(limiter.take(['c'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(10);
    expect(limiter.take(['c'], 0)).toBe(10);
    expect(limiter.take(['b'], 0)).toBe(0);
  });

  test('past maxKeys, a full bucket is forgotten first, as forgetting it changes nothing', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 }, 2);
    limiter.take(['a'], 0);
    // a and b together: a is empty, so nothing is taken, and b (used after a) stays full.
    expect(limiter.take(['a', 'b'], 0)).toBe(10);
    // c is a third key: b goes, being full, though a was used less recently.
    expect(limiter.take(['c'], 0)).toBe(0);
    expect(limiter.take(['a'], 0)).toBe(10);
    expect(limiter.take(['c'], 0)).toBe(10);
  });

  test('a new key past maxKeys is remembered: it cannot escape its limit by being new', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 }, 2);
    limiter.take(['a'], 0);
    limiter.take(['b'], 0);
    expect(limiter.take(['c'], 0)).toBe(0);
    expect(limiter.take(['c'], 0)).toBe(10);
    expect(limiter.take(['c'], 0)).toBe(10);
  });
});

describe('clientKey: what a client is limited by', () => {
  test.each([
    [undefined, 'unknown'],
    ['', 'unknown'],
    ['192.0.2.1', '192.0.2.1'],
    ['127.0.0.1', '127.0.0.1'],
    // IPv4-mapped IPv6 (a dual-stack socket) is the IPv4 client.
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    // IPv6: the /64 (one host is handed a whole /64).
    ['2001:db8:abcd:12::1', '2001:db8:abcd:12::/64'],
    ['2001:db8:abcd:12:ffff:ffff:ffff:fffe', '2001:db8:abcd:12::/64'],
    ['2001:0DB8:ABCD:0012:0000:0000:0000:0001', '2001:db8:abcd:12::/64'],
    ['2001:db8:abcd:13::1', '2001:db8:abcd:13::/64'],
    ['2001:0000:0db8:00ab::1', '2001:0:db8:ab::/64'],
    ['2001:db8::', '2001:db8:0:0::/64'],
    ['2001:db8::1:2:3:4', '2001:db8:0:0::/64'],
    ['2001:db8:1:2:3::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    // "::" standing for one group only: the groups after it keep their places.
    ['2001:db8::4:5:6:7:8', '2001:db8:0:4::/64'],
    ['2001::3:4:5:6:7:8', '2001:0:3:4::/64'],
    // Only an address that is all "::ffff:" and an IPv4 address is IPv4-mapped; every octet counts.
    ['::ffff:203.0.113.58', '203.0.113.58'],
    ['2001:db8::ffff:192.0.2.1', '2001:db8:0:0::/64'],
    // Not an address (a Unix socket, say): as it is.
    ['localhost', 'localhost'],
    ['::ffff:not-an-ip', '::ffff:not-an-ip'],
    ['::ffff:192.0.2.1.5', '::ffff:192.0.2.1.5'],
  ])('%j: %s', (address, key) => {
    expect(clientKey(address)).toBe(key);
  });

  test('two addresses of one /64 share a bucket; the next /64 has its own', () => {
    const limiter = new RateLimiter({ perMinute: 6, burst: 1 });
    expect(limiter.take([clientKey('2001:db8:0:1::a')], 0)).toBe(0);
    expect(limiter.take([clientKey('2001:db8:0:1:8000::b')], 0)).toBe(10);
    expect(limiter.take([clientKey('2001:db8:0:2::a')], 0)).toBe(0);
    expect(limiter.take([clientKey('::ffff:192.0.2.1')], 0)).toBe(0);
    expect(limiter.take([clientKey('192.0.2.1')], 0)).toBe(10);
  });
});

describe('DiskGuard: refuses while the database file system is short of space', () => {
  const free = (dir: string) => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };

  test('short of space: the free bytes; enough: null', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-guards-'));
    try {
      const short = new DiskGuard(dir, Number.MAX_SAFE_INTEGER).shortOfSpace(0);
      expect(short).toBeGreaterThan(0);
      expect(Math.abs((short as number) - free(dir))).toBeLessThan(64 * 1024 * 1024);
      expect(new DiskGuard(dir, 1).shortOfSpace(0)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('no database file (in memory), a minimum of 0, or a file system that cannot be read: never short', () => {
    expect(new DiskGuard(null, Number.MAX_SAFE_INTEGER).shortOfSpace(0)).toBeNull();
    expect(new DiskGuard(tmpdir(), 0).shortOfSpace(0)).toBeNull();
    expect(
      new DiskGuard(join(tmpdir(), 'mtasts-no-such-dir', 'x'), Number.MAX_SAFE_INTEGER).shortOfSpace(0),
    ).toBeNull();
  });

  test('read at most once per cacheMs (and again when the clock goes back)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-guards-'));
    const guard = new DiskGuard(dir, Number.MAX_SAFE_INTEGER, 5000);
    expect(guard.shortOfSpace(10_000)).toBeGreaterThan(0);
    // The directory goes: what was read stands until 5 s have passed (also asked again at the same instant).
    rmSync(dir, { recursive: true });
    expect(guard.shortOfSpace(10_000)).toBeGreaterThan(0);
    expect(guard.shortOfSpace(14_999)).toBeGreaterThan(0);
    expect(guard.shortOfSpace(15_000)).toBeNull();
    // A clock that goes back reads again.
    const gone = mkdtempSync(join(tmpdir(), 'mtasts-guards-'));
    const guard2 = new DiskGuard(gone, Number.MAX_SAFE_INTEGER, 5000);
    expect(guard2.shortOfSpace(10_000)).toBeGreaterThan(0);
    rmSync(gone, { recursive: true });
    expect(guard2.shortOfSpace(9_999)).toBeNull();
  });

  // A file system of its own, whose free space nothing else changes: a 1 MiB tmpfs (mounting it needs root).
  test.runIf(process.getuid?.() === 0)('exactly the minimum free is enough; one byte less is short', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-guards-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    try {
      expect(free(dir)).toBe(1024 * 1024);
      expect(new DiskGuard(dir, 1024 * 1024).shortOfSpace(0)).toBeNull();
      expect(new DiskGuard(dir, 1024 * 1024 + 1).shortOfSpace(0)).toBe(1024 * 1024);
    } finally {
      execFileSync('umount', [dir]);
      rmSync(dir, { recursive: true });
    }
  });

  test('the default cache is 5 s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtasts-guards-'));
    const guard = new DiskGuard(dir, Number.MAX_SAFE_INTEGER);
    expect(guard.shortOfSpace(0)).toBeGreaterThan(0);
    rmSync(dir, { recursive: true });
    expect(guard.shortOfSpace(4_999)).toBeGreaterThan(0);
    expect(guard.shortOfSpace(5_000)).toBeNull();
  });
});
