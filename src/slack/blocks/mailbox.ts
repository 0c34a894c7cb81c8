import type { MailboxStatus } from '../../store/imap.js';
import { humanDuration } from './alert.js';
import { type Block, context, esc, quoted, section } from './common.js';

/** The TLS-RPT mailbox read over IMAP, as its operator sees it (App Home, `/mtasts reports`). */
export interface MailboxView {
  /** imaps://user@host:port: no secret in it. */
  account: string;
  folder: string;
  /** Null until a pass has been made. */
  status: MailboxStatus | null;
  /** A failure this long is alerted in the operator channel. */
  alertAfterMs: number;
  now: Date;
}

const shortTime = (iso: string) => esc(iso.replace(/\.\d{3}Z$/, 'Z'));

/**
 * When the mailbox was last read, and whether it fails now: since when and with what error. The error may hold text
 * the server chose (a login refusal's reason): it is shown inert.
 */
export function mailboxBlocks(m: MailboxView): Block[] {
  const s = m.status;
  const lastRead = s?.lastReadAt ? `last read ${shortTime(s.lastReadAt)}` : 'never read yet';
  let state: string;
  if (!s)
    state = ':hourglass: Not read yet: the app reads it at start, then as reports arrive and at every poll.';
  else if (s.lastError === null) state = `:white_check_mark: OK, ${lastRead}.`;
  else {
    const since = s.failingSince ?? s.lastErrorAt ?? m.now.toISOString();
    const lasted = humanDuration(Math.max(0, m.now.getTime() - Date.parse(since) || 0));
    state = [
      `:x: *Failing* since ${shortTime(since)} (${lasted}); ${lastRead}.`,
      `Last error${s.lastErrorAt ? ` (${shortTime(s.lastErrorAt)})` : ''}: ${quoted(s.lastError, 600)}`,
    ].join('\n');
  }
  return [
    section(
      `:inbox_tray: *TLS-RPT mailbox* ${quoted(m.account, 200)}, folder ${quoted(m.folder, 100)}\n${state}`,
    ),
    context(
      `Shown to the app's operator only. A mailbox failing for ${humanDuration(m.alertAfterMs)} is alerted in MTASTS_OPERATOR_CHANNEL.`,
    ),
  ];
}
