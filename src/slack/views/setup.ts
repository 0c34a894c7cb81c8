import type {
  AllMiddlewareArgs,
  App,
  BlockAction,
  SlackActionMiddlewareArgs,
  SlackViewMiddlewareArgs,
  ViewSubmitAction,
  webApi,
} from '@slack/bolt';
import type { Report } from '../../core/check.js';
import { type Domain, parseDomain } from '../../core/domain.js';
import { MAX_AGE_LIMIT, mxPatternProblem, type PolicyMode } from '../../core/policy.js';
import { durationText, ROLLOUT_WINDOW_MS, type RolloutVerdict, rolloutVerdict } from '../../core/rollout.js';
import { encodeRuaUri, ruaProblem } from '../../core/tlsrpt-record.js';
import { RecordsInputError, type RecordsRequest } from '../../generate/records.js';
import { recordsFor } from '../../generate/service.js';
import { DatabaseBusyError } from '../../store/busy.js';
import { type ButtonScope, buttonValue, readButtonValue } from '../blocks/actions.js';
import { code, esc } from '../blocks/common.js';
import { recordsMessage } from '../blocks/records.js';
import { hostAction } from '../commands/host.js';
import { rolloutHistoryOf } from '../commands/records.js';
import { DB_BUSY_TEXT, db, rationed, type SlackContext } from '../context.js';
import { MALFORMED, type ViewState, ViewSubmission, ViewTyping } from '../input.js';

export const SETUP_CALLBACK = 'mtasts_setup';

/** The values a user typed into the setup modal, checked field by field (each error under its own field). */
export function validateSetup(values: { mode?: string; maxAge?: string; mx?: string; rua?: string }): {
  request: RecordsRequest;
  errors: Record<string, string>;
} {
  const errors: Record<string, string> = {};
  const request: RecordsRequest = {};
  const mode = values.mode ?? 'testing';
  if (!['testing', 'enforce', 'none'].includes(mode)) errors.mode = 'Choose testing, enforce or none.';
  else request.mode = mode as PolicyMode;
  const maxAge = (values.maxAge ?? '').trim();
  if (!/^\d{1,10}$/.test(maxAge) || Number(maxAge) < 1 || Number(maxAge) > MAX_AGE_LIMIT) {
    errors.max_age = `Seconds, from 1 to ${MAX_AGE_LIMIT} (86400 is a day, 604800 a week).`;
  } else request.maxAge = Number(maxAge);
  const mx = (values.mx ?? '')
    .split(/[\s,]+/)
    .map((m) => m.trim().replace(/\.$/, ''))
    .filter(Boolean);
  const badMx = mx.map((m) => [m, mxPatternProblem(m)] as const).find(([, p]) => p !== null);
  if (mode !== 'none' && mx.length === 0) errors.mx = 'List your MX hosts, one per line.';
  else if (badMx) errors.mx = `"${badMx[0].slice(0, 60)}" ${badMx[1]}.`.slice(0, 150);
  else if (mx.length > 0) request.mx = mx;
  const rua = (values.rua ?? '').split(/[\s,]+/).filter(Boolean);
  const badRua = rua.map((r) => [r, ruaProblem(encodeRuaUri(r))] as const).find(([, p]) => p !== null);
  if (badRua) errors.rua = `"${badRua[0].slice(0, 60)}" ${badRua[1]}.`.slice(0, 150);
  else if (rua.length > 0) request.rua = rua;
  return { request, errors };
}

/** Opens the guided setup, pre-filled from the last check (or a quick MX lookup). */
export async function openSetupModal(
  client: webApi.WebClient,
  ctx: SlackContext,
  triggerId: string,
  domain: Domain,
  scope: ButtonScope,
  last: Report | null,
): Promise<void> {
  let mx = last?.evidence.mx.hosts.map((h) => h.host) ?? [];
  if (mx.length === 0) {
    // The trigger expires after 3 s: the lookup gets 1.5 s at most.
    const answer = await Promise.race([
      ctx.engine.deps.dns.mx(domain.ascii),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 1500)),
    ]);
    if (answer?.ok)
      mx = answer.records.map((r) => r.exchange.replace(/\.$/, '').toLowerCase()).filter(Boolean);
  }
  const policy = last?.evidence.policy.valid ? last.evidence.policy.policy : null;
  const rua = last?.evidence.tlsrpt.rua?.join(', ') ?? `mailto:tls-reports@${domain.ascii}`;
  const rollout = await rolloutOfDomain(ctx, domain.ascii, last);
  const ready = rollout.verdict.ready;
  const view = setupView(
    domain,
    scope,
    {
      mode: ready ? 'enforce' : (policy?.mode ?? 'testing'),
      maxAge: ready ? Math.max(policy?.maxAge ?? 0, 604800) : (policy?.maxAge ?? 86400),
      mx,
      rua,
    },
    {},
    modeHint(rollout.mode, rollout.verdict),
    Boolean(ctx.hosting && scope.channel),
  );
  await client.views.open({ trigger_id: triggerId, view: view as never });
}

/** The rollout rule for the domain, from its last check and the runtime's stores. */
async function rolloutOfDomain(
  ctx: SlackContext,
  domain: string,
  last: Report | null,
): Promise<{ mode: PolicyMode | null; verdict: RolloutVerdict }> {
  const mode = last?.evidence.policy.valid ? (last.evidence.policy.policy?.mode ?? null) : null;
  const history = await rolloutHistoryOf(ctx, domain);
  const verdict = rolloutVerdict({
    mode,
    cleanSince: history.watched && history.monitorRead ? history.cleanSince : null,
    lastReportedFailureAt: history.lastReportedFailureAt,
    now: ctx.now(),
    windowMs: ROLLOUT_WINDOW_MS,
  });
  return { mode, verdict };
}

/** The mode field's hint: what the rollout rule says of this domain. */
export function modeHint(mode: PolicyMode | null, verdict: RolloutVerdict): string {
  const rule = `enforce follows ${durationText(ROLLOUT_WINDOW_MS / 1000)} in testing with no errors and no reported TLS failures`;
  if (verdict.ready)
    return `Ready to enforce: in testing with no errors and no reported TLS failures since ${verdict.since?.slice(0, 10)}.`;
  if (mode === 'testing') return `Keep testing: enforce needs ${verdict.missing.join('; ')}.`.slice(0, 1990);
  if (mode === null) return `Start in testing: ${rule}.`;
  return `The policy is in ${mode} now; ${rule}.`;
}

export const SETUP_INPUT = 'mtasts_setup_input';

const HINTS: Record<string, string> = {
  mode: `Start in testing: enforce follows ${durationText(ROLLOUT_WINDOW_MS / 1000)} in testing with no errors and no reported TLS failures.`,
  max_age: '86400 while testing; 604800 (a week) or more in enforce.',
  mx: 'One per line: a host name, or *.domain for one label. Pre-filled from DNS.',
  rua: 'mailto: or https: URIs, separated by commas.',
};

/**
 * The setup form. Each field reports every change (dispatch_action), so the form is checked as the user types: a
 * field's hint turns into its error. `errors` come from validateSetup.
 */
export function setupView(
  domain: Domain,
  scope: ButtonScope,
  initial: { mode: PolicyMode; maxAge: number | string; mx: string[] | string; rua: string; serve?: string },
  errors: Record<string, string> = {},
  rolloutHint: string | null = null,
  hostingOffered = false,
) {
  const option = (value: PolicyMode, text: string) => ({ text: { type: 'plain_text', text }, value });
  const options = [
    option('testing', 'testing: report failures, deliver anyway'),
    option('enforce', 'enforce: refuse delivery without verified TLS'),
    option('none', 'none: switch MTA-STS off'),
  ];
  const hint = (block: string) => ({
    type: 'plain_text',
    text: errors[block]
      ? `:warning: ${errors[block]}`
      : ((block === 'mode' ? rolloutHint : null) ?? HINTS[block] ?? ''),
    emoji: true,
  });
  const typing = { dispatch_action_config: { trigger_actions_on: ['on_character_entered'] } };
  const input = (block: string, label: string, element: Record<string, unknown>, optional = false) => ({
    type: 'input',
    block_id: block,
    dispatch_action: true,
    ...(optional ? { optional: true } : {}),
    label: { type: 'plain_text', text: label },
    element: { action_id: SETUP_INPUT, ...element },
    hint: hint(block),
  });
  return {
    type: 'modal',
    callback_id: SETUP_CALLBACK,
    private_metadata: buttonValue(scope),
    title: { type: 'plain_text', text: 'MTA-STS setup' },
    submit: { type: 'plain_text', text: 'Get the records' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: `Records, policy and web-server snippets for ${code(domain.ascii)}.` },
      },
      ...(hostingOffered ? [serveInput(input, initial.serve)] : []),
      input('mode', 'Mode', {
        type: 'static_select',
        options,
        initial_option: options.find((o) => o.value === initial.mode) ?? options[0],
      }),
      input('max_age', 'max_age (seconds)', {
        type: 'plain_text_input',
        initial_value: String(initial.maxAge),
        ...typing,
      }),
      input(
        'mx',
        'MX hosts',
        {
          type: 'plain_text_input',
          multiline: true,
          initial_value: Array.isArray(initial.mx) ? initial.mx.join('\n') : initial.mx,
          ...typing,
        },
        true,
      ),
      input(
        'rua',
        'TLS-RPT reports to',
        { type: 'plain_text_input', initial_value: initial.rua, ...typing },
        true,
      ),
    ],
  };
}

/** Who serves the policy: the user's own web server (records and snippets), or the bot (hosted MTA-STS). */
function serveInput(
  input: (block: string, label: string, element: Record<string, unknown>) => Record<string, unknown>,
  serve: string | undefined,
) {
  const option = (value: string, text: string) => ({ text: { type: 'plain_text', text }, value });
  const options = [
    option('self', 'My web server: records, policy file and snippets'),
    option('bot', 'Let the bot host it: publish a CNAME, the bot serves the policy'),
  ];
  return input('serve', 'Who serves the policy', {
    type: 'static_select',
    options,
    initial_option: options.find((o) => o.value === serve) ?? options[0],
  });
}

/** What the form holds now, from a view's state (submission or a keystroke), checked by ViewInput. */
function formValues(state: ViewState) {
  const field = (block: string) => state[block]?.[SETUP_INPUT];
  return {
    mode: field('mode')?.selected_option?.value ?? 'testing',
    maxAge: field('max_age')?.value ?? '',
    mx: field('mx')?.value ?? '',
    rua: field('rua')?.value ?? '',
    serve: field('serve')?.selected_option?.value ?? 'self',
  };
}

type TypingArgs = SlackActionMiddlewareArgs<BlockAction> & AllMiddlewareArgs;

/** A keystroke (or a new mode) in the form: the form is shown again with each field's error, or its hint. */
export function setupTyped(ctx: SlackContext) {
  return async ({ ack, body, client, logger }: TypingArgs): Promise<void> => {
    await ack();
    const input = ViewTyping.safeParse(body);
    if (!input.success) return logger.warn('setup form: malformed keystroke payload ignored');
    const view = input.data.view;
    if (view.callback_id !== SETUP_CALLBACK) return;
    const scope = readButtonValue(view.private_metadata);
    const parsed = scope ? parseDomain(scope.domain) : null;
    if (!scope || !parsed?.ok) return;
    const values = formValues(view.state.values);
    const { errors } = validateSetup(values);
    const last = await db(() => ctx.checks.last(parsed.domain.ascii)).catch(() => null);
    const rollout = await rolloutOfDomain(ctx, parsed.domain.ascii, last).catch(() => null);
    const hint = rollout ? modeHint(rollout.mode, rollout.verdict) : null;
    const next = setupView(
      parsed.domain,
      scope,
      { ...values, mode: values.mode as PolicyMode },
      errors,
      hint,
      Boolean(ctx.hosting && scope.channel),
    );
    try {
      await client.views.update({ view_id: view.id, hash: view.hash, view: next as never });
    } catch (err) {
      // hash_conflict: a newer keystroke already updated the form.
      if (!String(err).includes('hash_conflict')) logger.warn(`setup form not updated: ${String(err)}`);
    }
  };
}

type ViewArgs = SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs;

/** Makes the records (a check of the domain first) and posts them only to the user; a failure is told the same way. */
async function postRecords(
  ctx: SlackContext,
  post: (message: { text: string; blocks?: unknown[] }) => Promise<unknown>,
  domain: Domain,
  request: RecordsRequest,
  log: (message: string) => void,
): Promise<void> {
  try {
    const history = await rolloutHistoryOf(ctx, domain.ascii);
    const result = await recordsFor(domain, request, ctx.engine, history);
    await post(recordsMessage(result.plan, result.snippets, result.domainConnect));
  } catch (err) {
    const known = err instanceof RecordsInputError;
    if (!known) log(`setup for ${domain.ascii} failed: ${String(err)}`);
    const message = known
      ? `:warning: ${esc(err.message)}`
      : err instanceof DatabaseBusyError
        ? DB_BUSY_TEXT
        : ':sweat: Sorry, the records could not be made; it has been logged.';
    await post({ text: message }).catch(() => {});
  }
}

/**
 * The setup's submission: errors under their fields (response_action: errors), else the records as a message. The
 * records start with a check, so the submission is rationed like one: when no check may start, the form stays open
 * and says when to try again.
 */
export function setupSubmitted(ctx: SlackContext) {
  return async ({ ack, body: rawBody, client, logger }: ViewArgs): Promise<void> => {
    const input = ViewSubmission.safeParse(rawBody);
    if (!input.success) {
      logger.warn('setup form: malformed submission refused');
      return void (await ack({ response_action: 'errors', errors: { mode: MALFORMED } }));
    }
    const { view, team: teamField, user: userField } = input.data;
    const { request, errors } = validateSetup(formValues(view.state.values));
    const scope = readButtonValue(view.private_metadata);
    const team = teamField?.id ?? userField.team_id ?? '';
    const parsed = scope ? parseDomain(scope.domain) : null;
    if (!scope || scope.team !== team || !parsed?.ok) {
      return void (await ack({
        response_action: 'errors',
        errors: { mode: 'This form does not belong to this workspace.' },
      }));
    }
    if (Object.keys(errors).length > 0) return void (await ack({ response_action: 'errors', errors }));
    const user = userField.id;
    const serve = formValues(view.state.values).serve;
    if (serve === 'bot')
      return hostFromForm(
        ctx,
        { ack, client, logger },
        { team, channel: scope.channel, user },
        parsed.domain,
        request,
      );
    const post = (message: { text: string; blocks?: unknown[] }) =>
      scope.channel
        ? client.chat.postEphemeral({ channel: scope.channel, user, ...message } as never)
        : client.chat.postMessage({ channel: user, ...message } as never);
    const refused = (message: string) => ack({ response_action: 'errors', errors: { mode: message } });
    await rationed(ctx, { team, user }, refused, async () => {
      await ack();
      await postRecords(ctx, post, parsed.domain, request, (m) => logger.error(m));
    });
  };
}

/**
 * "Let the bot host it": the same enrollment as `/mtasts host example.com`, with the form's mode, max_age and MX
 * hosts; the answer (the records to publish) only to the user. Hosting starts in testing, as the rollout rule asks.
 */
async function hostFromForm(
  ctx: SlackContext,
  { ack, client, logger }: Pick<ViewArgs, 'ack' | 'client' | 'logger'>,
  who: { team: string; channel: string; user: string },
  domain: Domain,
  request: RecordsRequest,
): Promise<void> {
  const hosting = ctx.hosting;
  if (!hosting || !who.channel) {
    return void (await ack({
      response_action: 'errors',
      errors: { serve: 'Hosting is set up from a channel: run `/mtasts host` there.' },
    }));
  }
  if (request.mode === 'enforce') {
    return void (await ack({
      response_action: 'errors',
      errors: { mode: 'Hosting starts in testing; the bot offers enforce once the rollout rule says ready.' },
    }));
  }
  await ack();
  const post = (message: object) =>
    client.chat.postEphemeral({ channel: who.channel, user: who.user, ...message } as never);
  const options = {
    ...(request.mode ? { mode: request.mode } : {}),
    ...(request.maxAge ? { maxAge: request.maxAge } : {}),
    ...(request.mx ? { mx: request.mx } : {}),
  };
  try {
    const { response_type: _, ...answer } = await hostAction(ctx, hosting, who, domain.ascii, {
      kind: 'enroll',
      options,
    });
    await post(answer);
  } catch (err) {
    const busy = err instanceof DatabaseBusyError;
    if (!busy) logger.error(`hosting ${domain.ascii} from the setup form failed: ${String(err)}`);
    await post({
      text: busy ? DB_BUSY_TEXT : ':sweat: Sorry, hosting could not be set up; it has been logged.',
    }).catch(() => {});
  }
}

export function registerSetup(app: App, ctx: SlackContext): void {
  app.view<ViewSubmitAction>(SETUP_CALLBACK, setupSubmitted(ctx));
  app.action<BlockAction>(SETUP_INPUT, setupTyped(ctx));
}
