import { type Db, sql } from './db.js';
import { alive, SELF } from './locks.js';

/** A page of a pass, claimed by this process: the watched domains after `after`, up to `upto` (null: no end). */
export interface PageClaim {
  passId: number;
  seq: number;
  after: string;
  upto: string | null;
}

/** The pass a process works on: one it began, or one it joined (begun by another process or before a restart). */
export type PassEntry =
  | { kind: 'open'; id: number; resumed: boolean }
  /** The pass of this scheduled tick was run and finished already (by another replica). */
  | { kind: 'finished'; id: number }
  /** Only an open pass was to be joined, and none is (it ended meanwhile). */
  | { kind: 'none' };

/**
 * Passes shared by every process on the database (migration 014). A pass is cut into pages of domains when it
 * begins; each process claims one page at a time with a lease it renews while it works on it; a page whose lease ran
 * out (or whose holder, on this host, is no longer running) is taken over by the next process that asks. Every domain
 * checked is recorded with its pass in the transaction that stores the check, and only while the page is still this
 * process's: a domain is stored at most once per pass, whoever checked it, whatever died meanwhile.
 *
 * Every method is safe when other processes call it at the same moment: what decides is one conditional statement or
 * one transaction (looks before it only spare work). On PostgreSQL pages are claimed with FOR UPDATE SKIP LOCKED, on
 * SQLite the database's write lock orders the claims.
 */
export class PassStore {
  constructor(
    private readonly db: Db,
    readonly holder: string = SELF,
  ) {}

  /**
   * The open pass, joined; else, for a scheduled tick (`slot`), that tick's pass when it ran already; else a new pass
   * (unless `joinOnly`). A tick that joins a pass under way counts as served by it. Two processes asking at once get the
   * same pass: at most one can be open (a unique index), and a tick names one pass.
   */
  async begin(now: Date, slot: string | null, joinOnly = false): Promise<PassEntry> {
    for (let attempt = 0; attempt < 5; attempt++) {
      // One look (one snapshot): the open pass, and the pass this tick was served by.
      const seen = await this.db.get<{ open_id: number | null; tick_pass: number | null }>(
        sql`SELECT (SELECT id FROM monitor_passes WHERE is_open = 1) AS open_id,
                   (SELECT pass_id FROM monitor_pass_ticks WHERE slot = ${slot}) AS tick_pass`,
      );
      const open = seen?.open_id == null ? null : Number(seen.open_id);
      const served = seen?.tick_pass == null ? null : Number(seen.tick_pass);
      if (served !== null && served !== open) return { kind: 'finished', id: served };
      if (open !== null) {
        if (slot !== null) await this.markTick(slot, open);
        return { kind: 'open', id: open, resumed: true };
      }
      if (joinOnly) return { kind: 'none' };
      const made = await this.db.get<{ id: number }>(
        sql`INSERT INTO monitor_passes (started_at, is_open) VALUES (${now.toISOString()}, 1)
            ON CONFLICT DO NOTHING RETURNING id`,
      );
      if (made) {
        if (slot !== null) await this.markTick(slot, Number(made.id));
        return { kind: 'open', id: Number(made.id), resumed: false };
      }
      // Another process opened one between the look and the insert: look again.
    }
    throw new Error('no monitoring pass could be begun or joined: the passes table keeps changing');
  }

  /** The tick is served by the pass (unless another process said so of it first). */
  private async markTick(slot: string, passId: number): Promise<void> {
    await this.db.run(
      sql`INSERT INTO monitor_pass_ticks (slot, pass_id) VALUES (${slot}, ${passId}) ON CONFLICT DO NOTHING`,
    );
  }

  /**
   * Cuts the pass into pages of `pageSize` watched domains, once: the first process to ask writes them, in one
   * transaction with the mark that they are written (another process asking meanwhile waits for it, then finds them).
   * A pass left by a version that kept a cursor instead starts its pages after that cursor.
   */
  plan(passId: number, pageSize: number): Promise<void> {
    return this.db.transaction(async () => {
      const marked = await this.db.run(
        sql`UPDATE monitor_passes SET planned = 1 WHERE id = ${passId} AND planned = 0`,
      );
      if (marked === 0) return;
      const pass = await this.db.get<{ cursor: string }>(
        sql`SELECT cursor FROM monitor_passes WHERE id = ${passId}`,
      );
      const domains = (
        await this.db.all<{ domain: string }>(
          sql`SELECT DISTINCT domain FROM subscriptions WHERE domain > ${pass?.cursor ?? ''} ORDER BY domain`,
        )
      ).map((r) => r.domain);
      let after = pass?.cursor ?? '';
      let seq = 0;
      for (let i = pageSize; i < domains.length; i += pageSize) {
        const upto = domains[i - 1] as string;
        await this.db.run(
          sql`INSERT INTO monitor_pages (pass_id, seq, after_domain, upto_domain)
              VALUES (${passId}, ${seq++}, ${after}, ${upto})`,
        );
        after = upto;
      }
      await this.db.run(
        sql`INSERT INTO monitor_pages (pass_id, seq, after_domain, upto_domain)
            VALUES (${passId}, ${seq}, ${after}, NULL)`,
      );
    });
  }

  /**
   * Claims the first page of the pass that is not done and that nobody holds: never claimed, released, its lease run
   * out, or held by a process of this host that is no longer running. Null when there is none for now.
   */
  async claim(passId: number, now: Date, leaseMs: number): Promise<PageClaim | null> {
    const at = now.toISOString();
    const holders = await this.db.all<{ claimed_by: string }>(
      sql`SELECT DISTINCT claimed_by FROM monitor_pages
          WHERE pass_id = ${passId} AND done_at IS NULL AND claimed_until > ${at} AND claimed_by <> ${this.holder}`,
    );
    const dead = holders.map((h) => h.claimed_by).filter((h) => !alive(h));
    // Every process uses the same lease: a claim that runs out further ahead than two leases was made by a clock far
    // ahead of this one, and is not waited for (a crashed replica with such a clock would hold its page for as long).
    const farthest = leaseEnd(now, 2 * leaseMs);
    const free = sql`done_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ${at} OR claimed_until > ${farthest}
      OR claimed_by = ${this.holder}
      ${dead.length > 0 ? sql`OR claimed_by IN (${sql.join(dead)})` : sql``})`;
    // A look first, so that a process waiting on others' pages only reads (on SQLite an UPDATE takes the write lock).
    const candidate = await this.db.get(
      sql`SELECT seq FROM monitor_pages WHERE pass_id = ${passId} AND ${free} ORDER BY seq LIMIT 1`,
    );
    if (!candidate) return null;
    const row = await this.db.get<{ seq: number; after_domain: string; upto_domain: string | null }>(
      sql`UPDATE monitor_pages SET claimed_by = ${this.holder}, claimed_until = ${leaseEnd(now, leaseMs)}
          WHERE pass_id = ${passId} AND ${free} AND seq = (
            SELECT seq FROM monitor_pages WHERE pass_id = ${passId} AND ${free} ORDER BY seq LIMIT 1
            ${this.db.pick('', 'FOR UPDATE SKIP LOCKED')})
          RETURNING seq, after_domain, upto_domain`,
    );
    return row ? { passId, seq: Number(row.seq), after: row.after_domain, upto: row.upto_domain } : null;
  }

  /** Extends this process's lease on the page; false when the page is no longer its own (taken over, or done). */
  async renew(claim: PageClaim, now: Date, leaseMs: number): Promise<boolean> {
    return (
      (await this.db.run(
        sql`UPDATE monitor_pages SET claimed_until = ${leaseEnd(now, leaseMs)}
            WHERE pass_id = ${claim.passId} AND seq = ${claim.seq} AND claimed_by = ${this.holder} AND done_at IS NULL`,
      )) > 0
    );
  }

  /** The page's watched domains not yet checked in its pass, in order. */
  async domains(claim: PageClaim): Promise<string[]> {
    const rows = await this.db.all<{ domain: string }>(
      sql`SELECT DISTINCT domain FROM subscriptions
          WHERE domain > ${claim.after} ${claim.upto === null ? sql`` : sql`AND domain <= ${claim.upto}`}
            AND domain NOT IN (SELECT domain FROM monitor_pass_checks WHERE pass_id = ${claim.passId})
          ORDER BY domain`,
    );
    return rows.map((r) => r.domain);
  }

  /**
   * Records that `domain` was checked in the claim's pass; to be called in the transaction that stores the check (on
   * PostgreSQL it holds a share lock on the page row until then, so that no other process can take the page over
   * meanwhile, while this process's other checks record side by side). 'lost' when the page is no longer this
   * process's, 'done' when the domain was recorded in this pass already: either way store nothing (roll back).
   */
  async record(claim: PageClaim, domain: string): Promise<'stored' | 'lost' | 'done'> {
    const held = await this.db.get(
      sql`SELECT 1 AS one FROM monitor_pages
          WHERE pass_id = ${claim.passId} AND seq = ${claim.seq} AND claimed_by = ${this.holder} AND done_at IS NULL
          ${this.db.pick('', 'FOR SHARE')}`,
    );
    if (!held) return 'lost';
    const row = await this.db.get(
      sql`INSERT INTO monitor_pass_checks (pass_id, domain, checked_by) VALUES (${claim.passId}, ${domain}, ${this.holder})
          ON CONFLICT DO NOTHING RETURNING domain`,
    );
    return row ? 'stored' : 'done';
  }

  /** The page is done, while it is still this process's. */
  async pageDone(claim: PageClaim, now: Date): Promise<boolean> {
    const done = await this.db.run(
      sql`UPDATE monitor_pages SET done_at = ${now.toISOString()}
          WHERE pass_id = ${claim.passId} AND seq = ${claim.seq} AND claimed_by = ${this.holder} AND done_at IS NULL`,
    );
    return done > 0;
  }

  /** Gives the page back (this process stops): the next process that asks takes it over at once. */
  async release(claim: PageClaim): Promise<void> {
    await this.db.run(
      sql`UPDATE monitor_pages SET claimed_by = NULL, claimed_until = NULL
          WHERE pass_id = ${claim.passId} AND seq = ${claim.seq} AND claimed_by = ${this.holder} AND done_at IS NULL`,
    );
  }

  /** Pages of the pass not done yet (held by a process, or waiting for one). */
  async outstanding(passId: number): Promise<number> {
    const row = await this.db.get<{ n: number }>(
      sql`SELECT COUNT(*) AS n FROM monitor_pages WHERE pass_id = ${passId} AND done_at IS NULL`,
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Ends the pass when every page is done, counting the domains stored in it by every process; true for the one call
   * that ended it (it does what follows a pass), false when pages remain or another process ended it. Its pages and
   * records are dropped with it.
   */
  finish(passId: number, now: Date): Promise<boolean> {
    return this.db.transaction(async () => {
      const ended = await this.db.run(
        sql`UPDATE monitor_passes SET finished_at = ${now.toISOString()}, is_open = NULL,
              domains = domains + (SELECT COUNT(*) FROM monitor_pass_checks WHERE pass_id = ${passId})
            WHERE id = ${passId} AND is_open = 1
              AND NOT EXISTS (SELECT 1 FROM monitor_pages WHERE pass_id = ${passId} AND done_at IS NULL)`,
      );
      if (ended === 0) return false;
      await this.db.run(sql`DELETE FROM monitor_pages WHERE pass_id = ${passId}`);
      await this.db.run(sql`DELETE FROM monitor_pass_checks WHERE pass_id = ${passId}`);
      return true;
    });
  }
}

function leaseEnd(now: Date, leaseMs: number): string {
  return new Date(now.getTime() + leaseMs).toISOString();
}
