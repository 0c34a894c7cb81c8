/** Block Kit building blocks and limits shared by every renderer. All pure. */

export const LIMITS = {
  blocksPerMessage: 50,
  blocksPerView: 100,
  sectionText: 3000,
  headerText: 150,
  contextElements: 10,
  fallbackText: 4000,
} as const;

// biome-ignore lint/suspicious/noExplicitAny: Block Kit JSON is open-ended; the renderers' tests check the limits.
export type Block = Record<string, any>;

export interface Message {
  /** Fallback for notifications and screen readers. */
  text: string;
  blocks: Block[];
}

/**
 * Escapes text for Slack's mrkdwn and plain text: &, < and > become entities, so text from DNS or a web server can
 * never form a link, a user or channel mention (<!channel>, <@U…>) or a command.
 */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Cuts text to `max` characters (counting the ellipsis), never in the middle of an &entity;. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  const amp = cut.lastIndexOf('&');
  if (amp >= 0 && !cut.slice(amp).includes(';')) cut = cut.slice(0, amp);
  return `${cut}…`;
}

export function header(text: string): Block {
  return { type: 'header', text: { type: 'plain_text', text: clip(text, LIMITS.headerText), emoji: true } };
}

export function section(mrkdwn: string): Block {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(mrkdwn, LIMITS.sectionText) } };
}

export function context(...mrkdwn: string[]): Block {
  return {
    type: 'context',
    elements: mrkdwn.slice(0, LIMITS.contextElements).map((t) => ({ type: 'mrkdwn', text: clip(t, 2000) })),
  };
}

export const divider: Block = { type: 'divider' };

/** Inline code, with backticks removed from the content so it cannot break out. */
export function code(text: string): string {
  return `\`${esc(text.replace(/`/g, "'"))}\``;
}

/**
 * Text a sender chose (a reporter's name, a failure reason, a host name or address from a report), shown inert: in a
 * code span, where Slack neither links URLs and domain names nor reads *bold*, _italic_ or ~strike~; with line
 * breaks and other control characters (which would end the span) made spaces, cut to `max` characters, and escaped
 * (&, <, > as entities, so no <!channel> or <@U…>).
 */
export function quoted(text: string, max = 80): string {
  const flat = text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]+/g, ' ').trim();
  if (flat === '') return '(empty)';
  // Cut between characters, never between the two halves of a surrogate pair.
  const cut = flat.length > max ? `${flat.slice(0, max - 1).replace(/[\ud800-\udbff]$/, '')}…` : flat;
  return code(cut);
}

/** A preformatted block of text, fenced; content escaped and its own fences neutralised. */
export function preformatted(text: string): string {
  return `\`\`\`${esc(text.replace(/```/g, "'''"))}\`\`\``;
}

export const STATUS_EMOJI = { pass: ':white_check_mark:', warn: ':warning:', fail: ':x:' } as const;
export const SEVERITY_EMOJI = { error: ':x:', warning: ':warning:', info: ':information_source:' } as const;
