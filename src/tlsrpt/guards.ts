import { statfsSync } from 'node:fs';

/** A token bucket's settings: tokens added per minute, and how many it holds. */
export interface Rate {
  perMinute: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Token buckets by key (a client address, a policy domain), in this process's memory: a restart refills them, and
 * several processes each keep their own. At most `maxKeys` buckets are kept; past that, the least recently used go
 * (a full one first, as forgetting it changes nothing).
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly rate: Rate,
    private readonly maxKeys = 100_000,
  ) {}

  /**
   * Takes one token from each key's bucket if every one has a token; otherwise takes none and returns the seconds
   * until they all have one again (for Retry-After). 0 means allowed.
   */
  take(keys: readonly string[], nowMs: number): number {
    const buckets = keys.map((k) => this.refilled(k, nowMs));
    const short = Math.max(0, ...buckets.map((b) => 1 - b.tokens));
    if (short > 0) return Math.max(1, Math.ceil((short * 60) / this.rate.perMinute));
    for (const b of buckets) b.tokens -= 1;
    return 0;
  }

  private refilled(key: string, nowMs: number): Bucket {
    const old = this.buckets.get(key);
    const bucket: Bucket = old
      ? {
          tokens: Math.min(
            this.rate.burst,
            old.tokens + (Math.max(0, nowMs - old.at) * this.rate.perMinute) / 60_000,
          ),
          at: Math.max(old.at, nowMs),
        }
      : { tokens: this.rate.burst, at: nowMs };
    // Re-inserted, so that the Map's order is the order of last use. Room is made before a new key goes in, so that
    // the bucket in use is never the one forgotten (a new one is full: forgotten, its client would never be limited).
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) this.evict();
    this.buckets.set(key, bucket);
    return bucket;
  }

  private evict(): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens >= this.rate.burst) {
        this.buckets.delete(key);
        return;
      }
    }
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}

/**
 * Free space on the database's file system, read with statfs at most once per `cacheMs`: reports are refused while it
 * is under `minFreeBytes`, well before SQLite can no longer write what it already holds.
 */
export class DiskGuard {
  private checkedAt = Number.NEGATIVE_INFINITY;
  private free: number | null = null;

  constructor(
    private readonly dir: string | null,
    private readonly minFreeBytes: number,
    private readonly cacheMs = 5000,
  ) {}

  /** The free bytes when they are under the minimum, else null (also when the file system cannot be read). */
  shortOfSpace(nowMs: number): number | null {
    if (this.dir === null || this.minFreeBytes <= 0) return null;
    if (nowMs - this.checkedAt >= this.cacheMs || nowMs < this.checkedAt) {
      this.checkedAt = nowMs;
      try {
        const s = statfsSync(this.dir);
        this.free = s.bavail * s.bsize;
      } catch {
        this.free = null;
      }
    }
    return this.free !== null && this.free < this.minFreeBytes ? this.free : null;
  }
}
