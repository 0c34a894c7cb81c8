import { type Db, sql } from './db.js';
import type { AlertPayload } from './monitor-state.js';

/** An alert to queue: where it goes, the thread it belongs under, and its data (rendered only when sent). */
export interface NewAlert {
  eventKey: string;
  teamId: string;
  channelId: string;
  threadEventKey: string | null;
  broadcast: boolean;
  payload: AlertPayload;
}

/**
 * Adds alerts to the outbox; call it inside the transaction that makes the change they report. An alert already
 * queued (same domain, event key and channel) is not added again.
 */
export async function enqueue(db: Db, domain: string, alerts: readonly NewAlert[], now: Date): Promise<void> {
  const at = now.toISOString();
  for (const a of alerts) {
    await db.run(
      sql`INSERT INTO outbox (domain, event_key, team_id, channel_id, thread_event_key, broadcast, payload_json, next_attempt_at, created_at)
          VALUES (${domain}, ${a.eventKey}, ${a.teamId}, ${a.channelId}, ${a.threadEventKey}, ${a.broadcast ? 1 : 0},
            ${JSON.stringify(a.payload)}, ${at}, ${at})
          ON CONFLICT (domain, event_key, team_id, channel_id) DO NOTHING`,
    );
  }
}
