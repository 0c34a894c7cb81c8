import type { CheckLimits } from '../config.js';

/** A check may start (release the ticket when it ends), or it is refused with a message saying when to try again. */
export type Ticket = { ok: true; release: () => void } | { ok: false; message: string };

const MINUTE_MS = 60_000;

/**
 * Rations the checks that Slack users start (each one a full network check): at most `perUser` running per user and
 * `perTeam` per workspace, and at most `perTeamPerMinute` started per workspace in any minute. Kept in memory, per
 * process; a refused check is not queued.
 */
export class CheckLimiter {
  private readonly running = new Map<string, number>();
  private readonly started = new Map<string, number[]>();

  constructor(
    private readonly limits: CheckLimits,
    private readonly now: () => number = Date.now,
  ) {}

  take(team: string, user: string): Ticket {
    const userKey = `${team}/${user}`;
    const now = this.now();
    const recent = (this.started.get(team) ?? []).filter((t) => t > now - MINUTE_MS);
    if (recent.length > 0) this.started.set(team, recent);
    else this.started.delete(team);
    if ((this.running.get(userKey) ?? 0) >= this.limits.perUser) {
      return {
        ok: false,
        message:
          this.limits.perUser === 1
            ? ':hourglass: You already have a check running; try again when its report has arrived.'
            : `:hourglass: You already have ${this.limits.perUser} checks running; try again when one of their reports has arrived.`,
      };
    }
    if ((this.running.get(team) ?? 0) >= this.limits.perTeam) {
      return {
        ok: false,
        message: `:hourglass: ${this.limits.perTeam} checks are already running in this workspace, the most at once; try again when one of them has reported (usually within a minute).`,
      };
    }
    if (recent.length >= this.limits.perTeamPerMinute) {
      const wait = Math.max(1, Math.ceil(((recent[0] ?? now) + MINUTE_MS - now) / 1000));
      return {
        ok: false,
        message: `:hourglass: This workspace has started ${this.limits.perTeamPerMinute} checks in the last minute, the most allowed; try again in ${wait} s.`,
      };
    }
    recent.push(now);
    this.started.set(team, recent);
    this.add(userKey, 1);
    this.add(team, 1);
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.add(userKey, -1);
        this.add(team, -1);
      },
    };
  }

  private add(key: string, delta: number): void {
    const n = (this.running.get(key) ?? 0) + delta;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
  }
}
