import { parse as parseQuery } from 'node:querystring';
import { z } from 'zod';

/**
 * What the listeners read from Slack's payloads, checked before use: a payload with a null, an array or a number
 * where an object or a string belongs is answered (or ignored), never thrown on. Unknown fields pass through.
 */

const slackId = z.string().min(1).max(64);
const anyObject = z.object({}).loose();
const team = z.object({ id: slackId }).loose().nullish();
const user = z.object({ id: slackId, team_id: slackId.optional() }).loose();

/** A slash command's fields (form-encoded: a repeated field arrives as an array, and is refused). */
export const CommandInput = z
  .object({
    team_id: slackId,
    channel_id: slackId,
    user_id: slackId,
    text: z.string().max(4000).default(''),
    trigger_id: z.string().max(256).default(''),
  })
  .loose();

/** A button clicked on a message (or in App Home, without a channel). */
export const ButtonBody = z
  .object({
    team,
    user,
    channel: z.object({ id: slackId }).loose().nullish(),
    trigger_id: z.string().max(256).default(''),
    message: z
      .object({ ts: z.string().max(64).optional(), blocks: z.array(z.unknown()).max(100).optional() })
      .loose()
      .nullish(),
    container: z
      .object({ message_ts: z.string().max(64).optional() })
      .loose()
      .nullish(),
  })
  .loose();

export const ButtonAction = z
  .object({
    action_id: z.string().max(255),
    value: z.string().max(2000),
    block_id: z.string().max(255).default(''),
  })
  .loose();

/** An App Home overflow menu choice. */
export const MenuBody = z.object({ team, user, trigger_id: z.string().max(256).default('') }).loose();
export const MenuAction = z
  .object({ selected_option: z.object({ value: z.string().max(2000) }).loose() })
  .loose();

const field = z
  .object({
    value: z.string().max(3000).nullish(),
    selected_option: z
      .object({ value: z.string().max(150) })
      .loose()
      .nullish(),
  })
  .loose();

/** A modal as Slack sends it back: its metadata and what the fields hold. */
export const ViewInput = z
  .object({
    id: z.string().max(64).default(''),
    hash: z.string().max(256).default(''),
    callback_id: z.string().max(255),
    private_metadata: z.string().max(3000),
    state: z.object({ values: z.record(z.string(), z.record(z.string(), field)) }).loose(),
  })
  .loose();

export type ViewState = z.infer<typeof ViewInput>['state']['values'];

export const ViewSubmission = z.object({ team, user, view: ViewInput }).loose();
export const ViewTyping = z.object({ view: ViewInput }).loose();

export const HomeOpened = z.object({ user: slackId, tab: z.string().max(32) }).loose();
export const TokensRevoked = z
  .object({
    tokens: z
      .object({ bot: z.array(z.string()).nullish() })
      .loose()
      .nullish(),
  })
  .loose();

const INTERACTIONS = new Set([
  'block_actions',
  'block_suggestion',
  'dialog_submission',
  'interactive_message',
  'message_action',
  'shortcut',
  'view_closed',
  'view_submission',
]);

/**
 * The parts of a request body that Bolt itself reads before any listener runs (to find its type, workspace, user and
 * channel): a signed body where one of them has the wrong shape would throw inside Bolt.
 */
const Envelope = z
  .object({
    type: z.string().max(64).optional(),
    event: z
      .object({
        type: z.string().max(128),
        channel: z.union([z.string(), anyObject]).optional(),
        user: z.union([z.string(), anyObject]).optional(),
        item: anyObject.optional(),
        subteam: anyObject.optional(),
      })
      .loose()
      .optional(),
    authorizations: z.array(anyObject).optional(),
    command: z.string().optional(),
    team_id: z.string().optional(),
    channel_id: z.string().optional(),
    user_id: z.string().optional(),
    actions: z.array(anyObject).min(1).optional(),
    team: anyObject.nullish(),
    enterprise: anyObject.nullish(),
    user: anyObject.optional(),
    channel: anyObject.optional(),
    view: anyObject.optional(),
  })
  .loose()
  .refine((b) => b.user !== undefined || (b.actions === undefined && !INTERACTIONS.has(b.type ?? '')), {
    message: 'an interaction without its user',
  })
  .refine((b) => !(b.type === 'view_submission' || b.type === 'view_closed') || b.view, {
    message: 'a view interaction without its view',
  });

const FORM = 'application/x-www-form-urlencoded';

/**
 * A verified body of /slack/events, parsed as Bolt parses it (form fields, or the JSON of their `payload` field, or
 * JSON), and checked to be an object of the shape Bolt reads: else a one-line problem.
 */
export function envelopeProblem(raw: Buffer, contentType: string | undefined): string | null {
  let body: unknown;
  try {
    if (contentType === FORM) {
      const form = parseQuery(raw.toString('utf8'));
      if (Array.isArray(form.payload)) return 'more than one payload field';
      body = typeof form.payload === 'string' ? JSON.parse(form.payload) : form;
    } else body = JSON.parse(raw.toString('utf8'));
  } catch {
    return 'the body is neither a form nor JSON';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'the body is not a JSON object';
  const parsed = Envelope.safeParse(body);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0];
  return `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'malformed'}`;
}

/** Whether a body is Slack's unsigned SSL check (`ssl_check=1`), which Bolt answers without a signature. */
export function isSslCheck(raw: Buffer, contentType: string | undefined): boolean {
  return contentType === FORM && parseQuery(raw.toString('utf8')).ssl_check === '1';
}

/** What a listener tells the user when Slack's payload could not be read. */
export const MALFORMED =
  ':warning: This request from Slack could not be read (malformed fields); nothing was done.';
