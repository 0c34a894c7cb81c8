import type { Block } from './common.js';

/**
 * Buttons carry the domain and the workspace and channel the message was posted to; a handler refuses a button whose
 * workspace or channel is not the one it was clicked in, so a crafted value cannot reach another team's subscriptions.
 */
export interface ButtonScope {
  domain: string;
  team: string;
  /** Empty in App Home, which belongs to no channel. */
  channel: string;
}

export const ACTION = {
  recheck: 'mtasts_recheck',
  watch: 'mtasts_watch',
  unwatch: 'mtasts_unwatch',
  records: 'mtasts_records',
  mute: 'mtasts_mute',
  unmute: 'mtasts_unmute',
} as const;

export function buttonValue(scope: ButtonScope): string {
  return JSON.stringify({ d: scope.domain, t: scope.team, c: scope.channel });
}

/** Reads a button value; null when it is not one of ours. */
export function readButtonValue(value: string | undefined): ButtonScope | null {
  if (!value || value.length > 600) return null;
  try {
    const v = JSON.parse(value) as { d?: unknown; t?: unknown; c?: unknown };
    if (typeof v.d !== 'string' || typeof v.t !== 'string' || typeof v.c !== 'string') return null;
    return { domain: v.d, team: v.t, channel: v.c };
  } catch {
    return null;
  }
}

/** A button whose value names its domain, workspace and channel (checked against the click's own on the way back). */
export function button(
  text: string,
  actionId: string,
  scope: ButtonScope,
  style?: 'primary' | 'danger',
): Block {
  return {
    type: 'button',
    text: { type: 'plain_text', text, emoji: true },
    action_id: actionId,
    value: buttonValue(scope),
    ...(style ? { style } : {}),
  };
}

/** Under a check report: Re-check, Watch or Unwatch, Show records. */
export function reportActions(scope: ButtonScope, watched: boolean): Block {
  return {
    type: 'actions',
    block_id: 'mtasts_report_actions',
    elements: [
      button('Re-check', ACTION.recheck, scope, 'primary'),
      watched
        ? button('Unwatch', ACTION.unwatch, scope)
        : button('Watch in this channel', ACTION.watch, scope),
      button('Show records', ACTION.records, scope),
    ],
  };
}

/** Under an alert: Mute 24 h (or Unmute) and Re-check now. */
export function alertActions(scope: ButtonScope, muted: boolean): Block {
  return {
    type: 'actions',
    block_id: 'mtasts_alert_actions',
    elements: [
      muted ? button('Unmute', ACTION.unmute, scope) : button('Mute 24 h', ACTION.mute, scope),
      button('Re-check now', ACTION.recheck, scope),
    ],
  };
}
