import { isIP } from 'node:net';
import { validate as validateCron } from 'node-cron';
import { z } from 'zod';
import { hostnameProblem } from './core/domain.js';
import {
  ConfigError,
  type EngineConfig,
  flagParse,
  intParse,
  type Parse,
  type PlainOutput,
  type PlainShape,
  domainConnectSettings as plainDomainConnectSettings,
  engineSettings as plainEngineSettings,
  loadDomainConnectKey as readPlainDomainConnectKey,
  loadEngineConfig as readPlainEngineConfig,
  unset,
} from './settings.js';
import { type ImapSettings, type OperatorChannel, Secret } from './tlsrpt/imap-settings.js';
import { parseWebhooks, type Webhook } from './webhooks/destinations.js';

/**
 * The only module that reads the environment: every setting is parsed and checked here, once.
 *
 * A setting is one line of a schema below: `field: setting('VARIABLE', kind(range, default))`. The field is the one
 * name the code uses for the variable, and its type is inferred from the kind. A rule between settings (one needs
 * another, one must not exceed another) is an entry in `appRules`. Every bad setting is reported at once, one line each.
 */

export { ConfigError };

type Env = NodeJS.ProcessEnv;

/** Each setting's environment variable, declared once next to its field. */
const variables = z.registry<{ variable: string }>();

/** A value read from one environment variable (a string, or undefined when unset). */
type Kind = z.ZodType<unknown, string | undefined>;

function setting<K extends Kind>(variable: string, kind: K): K {
  variables.add(kind as z.ZodType, { variable });
  return kind;
}

const problem = (ctx: z.RefinementCtx, message: string): never => {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
};

/** A setting declared as a plain parse function (settings.ts) as a kind of this schema. */
const fromParse = <T>(parse: Parse<T>) =>
  z
    .string()
    .optional()
    .transform((v, ctx): T => {
      const read = parse(v);
      return read.ok ? read.value : problem(ctx, read.message);
    });

/** A group of plain settings (settings.ts) as a group of this schema, each with its variable. */
function zodGroup<S extends PlainShape>(shape: S) {
  const fields = Object.entries(shape).map(([field, s]) => [field, setting(s.variable, fromParse(s.parse))]);
  return z.object(
    Object.fromEntries(fields) as { [K in keyof S]: z.ZodType<PlainOutput<S>[K], string | undefined> },
  );
}

const int = (min: number, max: number, fallback: number) => fromParse(intParse(min, max, fallback));

const flag = (fallback: boolean) => fromParse(flagParse(fallback));

const cronExpression = (fallback: string, meaning: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const expression = unset(v) ? fallback : v.trim();
      if (!validateCron(expression))
        return problem(ctx, `is not a cron expression: "${expression}" (e.g. "${fallback}", ${meaning})`);
      return expression;
    });

/** Trimmed; '' when unset. */
const text = () =>
  z
    .string()
    .optional()
    .transform((v) => v?.trim() ?? '');

/** Trimmed (and matching `pattern` when given); null when unset or empty. */
const optionalText = (pattern?: RegExp, message = '') =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (unset(v)) return null;
      return !pattern || pattern.test(v.trim()) ? v.trim() : problem(ctx, message);
    });

/** Taken as it is (a password may hold spaces); '' when unset. */
const verbatim = () =>
  z
    .string()
    .optional()
    .transform((v) => v ?? '');

const engineSettings = zodGroup(plainEngineSettings);

export type { EngineConfig };

export function loadEngineConfig(env: Env = process.env): EngineConfig {
  return readPlainEngineConfig(env);
}

const domainConnectSettings = zodGroup(plainDomainConnectSettings);

/** The Domain Connect signing key, or null when this installation has none. */
export function loadDomainConnectKey(
  env: Env = process.env,
): { privateKeyPem: string; keyHost: string } | null {
  return readPlainDomainConnectKey(env);
}

const WHERE_TOKENS = 'see the README: Slack app settings, "Install App" and "Basic Information" pages';
const BOT_TOKEN = /^xoxb-[A-Za-z0-9-]+$/;
const OAUTH_VARIABLES = ['SLACK_CLIENT_ID', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET'] as const;

/** Multi-workspace install through OAuth: on when its first three settings are given. */
const oauthSettings = z.object({
  clientId: setting('SLACK_CLIENT_ID', text()),
  clientSecret: setting('SLACK_CLIENT_SECRET', text()),
  stateSecret: setting('SLACK_STATE_SECRET', text()),
  redirectUri: setting(
    'SLACK_REDIRECT_URI',
    optionalText(
      /^https:\/\/\S+$/,
      'must be the https:// URL of /slack/oauth_redirect on this app, as set in the app\'s "OAuth & Permissions"',
    ),
  ),
});

export type OAuthConfig = z.output<typeof oauthSettings>;

const appSettings = z.object({
  /** The single workspace's bot token; empty in multi-workspace (OAuth) mode without one. */
  botToken: setting('SLACK_BOT_TOKEN', text()),
  oauth: oauthSettings,
  appToken: setting(
    'SLACK_APP_TOKEN',
    optionalText(
      /^xapp-[A-Za-z0-9-]+$/,
      'must be an app-level token starting with xapp- (Basic Information > App-Level Tokens, scope connections:write)',
    ),
  ),
  signingSecret: setting('SLACK_SIGNING_SECRET', optionalText()),
  apiUrl: setting(
    'SLACK_API_URL',
    optionalText(
      /^https?:\/\/[^\s]+\/$/,
      'must be an http(s) URL ending in "/", e.g. https://slack.com/api/',
    ),
  ),
  port: setting('PORT', int(0, 65535, 3000)),
  databasePath: setting(
    'DATABASE_PATH',
    z
      .string()
      .optional()
      .transform((v) => (unset(v) ? 'db/mtasts.sqlite' : v)),
  ),
  /** PostgreSQL, for several replicas on one database; null: SQLite at DATABASE_PATH. */
  databaseUrl: setting('DATABASE_URL', postgresUrl()),
  /** The PostgreSQL pool (DATABASE_URL): connections at most, a statement's and a connection's time limits. */
  postgres: z.object({
    poolSize: setting('MTASTS_PG_POOL_SIZE', int(1, 1000, 10)),
    statementTimeoutMs: setting('MTASTS_PG_STATEMENT_TIMEOUT_MS', int(100, 3600000, 30000)),
    connectTimeoutMs: setting('MTASTS_PG_CONNECT_TIMEOUT_MS', int(100, 600000, 10000)),
  }),
  schedule: setting('MTASTS_SCHEDULE', cronExpression('0 * * * *', 'hourly')),
  maxDomainsPerTeam: setting('MTASTS_MAX_DOMAINS_PER_TEAM', int(1, 100000, 100)),
  /** The HTTP listener (events in HTTP mode, /healthz, /tlsrpt, OAuth) in both modes. */
  http: z.object({
    headersTimeoutMs: setting('MTASTS_HTTP_HEADERS_TIMEOUT_MS', int(100, 600000, 10000)),
    requestTimeoutMs: setting('MTASTS_HTTP_REQUEST_TIMEOUT_MS', int(100, 3600000, 30000)),
    keepAliveTimeoutMs: setting('MTASTS_HTTP_KEEPALIVE_TIMEOUT_MS', int(100, 600000, 5000)),
    maxConnections: setting('MTASTS_HTTP_MAX_CONNECTIONS', int(1, 1000000, 1000)),
    maxConnectionsPerAddress: setting('MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS', int(1, 1000000, 100)),
    maxHeaderBytes: setting('MTASTS_HTTP_MAX_HEADER_BYTES', int(1024, 1048576, 16384)),
    /** Largest body /slack/events reads; a larger one is refused (413) before it is read. */
    slackBodyBytes: setting('MTASTS_SLACK_MAX_BODY_BYTES', int(1024, 16777216, 1048576)),
    /** Signatures remembered (for 5 minutes) so that a captured request cannot be replayed. */
    replayMemory: setting('MTASTS_SLACK_REPLAY_MEMORY', int(100, 10000000, 100000)),
  }),
  /** Checks started from Slack (command, buttons, setup form, App Home): at once per user and per workspace, and
   * started per workspace per minute. */
  checkLimits: z.object({
    perUser: setting('MTASTS_CHECKS_PER_USER', int(1, 100, 1)),
    perTeam: setting('MTASTS_CHECKS_PER_TEAM', int(1, 1000, 4)),
    perTeamPerMinute: setting('MTASTS_CHECKS_PER_TEAM_PER_MINUTE', int(1, 100000, 20)),
  }),
  /** How long one SQLite statement waits for another process's lock before "database busy". */
  dbBusyTimeoutMs: setting('MTASTS_DB_BUSY_TIMEOUT_MS', int(0, 60000, 200)),
  monitorConcurrency: setting('MTASTS_MONITOR_CONCURRENCY', int(1, 1024, 32)),
  /** A process's lease on a page of a pass (renewed every third of it): how soon a dead replica's page is taken over. */
  monitorPageLeaseMs: setting('MTASTS_MONITOR_PAGE_LEASE_MS', int(3000, 3600000, 60000)),
  /** SMTP connections at once to one address, and in all, during a pass. */
  smtpPerAddress: setting('MTASTS_SMTP_PER_ADDRESS', int(1, 64, 2)),
  smtpConcurrency: setting('MTASTS_SMTP_CONCURRENCY', int(1, 1024, 64)),
  reminderHours: setting('MTASTS_REMINDER_HOURS', int(1, 720, 24)),
  /** Each Slack Web API call posting an alert is abandoned (and retried later) after this. */
  slackTimeoutMs: setting('MTASTS_SLACK_TIMEOUT_MS', int(100, 120000, 10000)),
  tlsrpt: z.object({
    keepUnwatched: setting('MTASTS_TLSRPT_KEEP_UNWATCHED', flag(false)),
    /** A fraction: the variable is a percentage. */
    alertRate: setting(
      'MTASTS_TLSRPT_ALERT_PERCENT',
      int(1, 100, 5).transform((p) => p / 100),
    ),
    alertMinSessions: setting('MTASTS_TLSRPT_ALERT_MIN_SESSIONS', int(1, 1000000, 20)),
    digestSchedule: setting('MTASTS_TLSRPT_DIGEST_SCHEDULE', cronExpression('0 9 * * *', 'daily at 09:00')),
    /** Reports whose period ended longer ago are deleted (at each digest). */
    retentionDays: setting('MTASTS_TLSRPT_RETENTION_DAYS', int(1, 3650, 400)),
    /** The intake's limits (see README, TLS-RPT reports). */
    alertMaxAgeDays: setting('MTASTS_TLSRPT_ALERT_MAX_AGE_DAYS', int(0, 30, 2)),
    maxBytes: setting('MTASTS_TLSRPT_MAX_BYTES', int(4096, 16777216, 1048576)),
    maxSessions: setting('MTASTS_TLSRPT_MAX_SESSIONS', int(1000, 1000000000000, 1000000000)),
    maxPeriodDays: setting('MTASTS_TLSRPT_MAX_PERIOD_DAYS', int(1, 31, 3)),
    parseTimeoutMs: setting('MTASTS_TLSRPT_PARSE_TIMEOUT_MS', int(10, 60000, 2000)),
    clientRate: z.object({
      perMinute: setting('MTASTS_TLSRPT_CLIENT_PER_MINUTE', int(1, 1000000, 60)),
      burst: setting('MTASTS_TLSRPT_CLIENT_BURST', int(1, 1000000, 120)),
    }),
    domainRate: z.object({
      perMinute: setting('MTASTS_TLSRPT_DOMAIN_PER_MINUTE', int(1, 1000000, 10)),
      burst: setting('MTASTS_TLSRPT_DOMAIN_BURST', int(1, 1000000, 200)),
    }),
    minFreeMb: setting('MTASTS_TLSRPT_MIN_FREE_MB', int(0, 1000000000, 512)),
  }),
  /** The mailbox TLS-RPT reports are read from over IMAP: ImapSettings when the URL is set, else null. */
  tlsrptImap: z.object({
    url: setting('MTASTS_TLSRPT_IMAP_URL', imapUrl()),
    password: setting('MTASTS_TLSRPT_IMAP_PASSWORD', verbatim()),
    tokenFile: setting('MTASTS_TLSRPT_IMAP_TOKEN_FILE', text()),
    poll: setting('MTASTS_TLSRPT_IMAP_POLL', cronExpression('*/5 * * * *', 'every 5 minutes')),
    doneFolder: setting('MTASTS_TLSRPT_IMAP_DONE_FOLDER', imapFolder('TLS-RPT/processed')),
    rejectFolder: setting('MTASTS_TLSRPT_IMAP_REJECT_FOLDER', imapFolder('TLS-RPT/not-a-report')),
    batchSize: setting('MTASTS_TLSRPT_IMAP_BATCH', int(1, 1000, 50)),
    maxMessageBytes: setting('MTASTS_TLSRPT_IMAP_MAX_MESSAGE_BYTES', int(65536, 104857600, 20971520)),
    timeoutMs: setting('MTASTS_TLSRPT_IMAP_TIMEOUT_MS', int(1000, 600000, 30000)),
    alertAfterMs: setting(
      'MTASTS_TLSRPT_IMAP_ALERT_HOURS',
      int(1, 720, 24).transform((h) => h * 3_600_000),
    ),
  }),
  /** Where alerts about the app itself go, and whose workspace sees its status; or null. */
  operatorChannel: setting('MTASTS_OPERATOR_CHANNEL', operatorChannel()),
  /** Named incoming webhooks the watch list's alerts go to (`name=[kind:]url`, comma separated): secrets. */
  webhooks: setting('MTASTS_WEBHOOKS', webhookList()),
  /** Hosted MTA-STS (issue 15): the bot serves mta-sts.<domain> for enrolled domains; off while the name is unset. */
  hosting: z.object({
    /**
     * The name under which each enrollment's own CNAME target `<token>.<name>` lies (the operator's wildcard
     * `*.<name>` sends them to the bot); null: hosting is off.
     */
    name: setting('MTASTS_HOSTING_NAME', hostingName()),
    /** The bot's public addresses, when the name's own A/AAAA records are not what to compare with. */
    addresses: setting('MTASTS_HOSTING_ADDRESSES', addressList()),
    /** Hosted domains per Slack workspace (and for the command line). */
    maxPerWorkspace: setting('MTASTS_HOSTING_MAX_PER_WORKSPACE', int(1, 100000, 50)),
    /** mx patterns in one hosted policy. */
    maxMxPatterns: setting('MTASTS_HOSTING_MAX_MX', int(1, 100, 20)),
    /** Days a pending enrollment blocks another owner's request from replacing it. */
    pendingDays: setting('MTASTS_HOSTING_PENDING_DAYS', int(1, 365, 7)),
  }),
  /** Hosted MTA-STS, the serving half: the policy listener, the http-01 listener, ACME (see README, Hosted MTA-STS). */
  serving: z.object({
    /** host:port of the TLS policy listener (started only while MTASTS_HOSTING_NAME is set). */
    listen: setting('MTASTS_HOSTING_LISTEN', listenAddress('0.0.0.0:443')),
    /** host:port of the plain HTTP listener for http-01; null: off (tls-alpn-01 on the policy listener only). */
    httpListen: setting('MTASTS_HOSTING_HTTP_LISTEN', listenAddress(null)),
    handshakeTimeoutMs: setting('MTASTS_HOSTING_HANDSHAKE_TIMEOUT_MS', int(100, 600000, 10000)),
    headersTimeoutMs: setting('MTASTS_HOSTING_HEADERS_TIMEOUT_MS', int(100, 600000, 10000)),
    keepAliveTimeoutMs: setting('MTASTS_HOSTING_KEEPALIVE_TIMEOUT_MS', int(100, 600000, 5000)),
    maxHeaderBytes: setting('MTASTS_HOSTING_MAX_HEADER_BYTES', int(1024, 65536, 8192)),
    maxRequestsPerConnection: setting('MTASTS_HOSTING_MAX_REQUESTS_PER_CONNECTION', int(1, 100000, 100)),
    maxConnections: setting('MTASTS_HOSTING_MAX_CONNECTIONS', int(1, 1000000, 1000)),
    maxConnectionsPerAddress: setting('MTASTS_HOSTING_MAX_CONNECTIONS_PER_ADDRESS', int(1, 1000000, 20)),
    /** A policy connection is closed this long after it opened, whatever it is doing. */
    maxConnectionMs: setting('MTASTS_HOSTING_MAX_CONNECTION_MS', int(1000, 3600000, 60000)),
    /** A policy connection with no traffic either way for this long is closed. */
    idleTimeoutMs: setting('MTASTS_HOSTING_IDLE_TIMEOUT_MS', int(100, 600000, 15000)),
    acmeDirectory: setting(
      'MTASTS_ACME_DIRECTORY',
      httpsUrl('https://acme-v02.api.letsencrypt.org/directory'),
    ),
    acmeEmail: setting(
      'MTASTS_ACME_EMAIL',
      optionalText(/^[^\s@<>,;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$/, 'must be an e-mail address'),
    ),
    /** A certificate is renewed this many days before it expires. */
    renewBeforeDays: setting('MTASTS_ACME_RENEW_DAYS', int(1, 89, 30)),
    /** After a failed order, the first wait (doubled per failure in a row) and the longest. */
    retryMinMs: setting(
      'MTASTS_ACME_RETRY_MIN_MINUTES',
      int(1, 1440, 60).transform((m) => m * 60_000),
    ),
    retryMaxMs: setting(
      'MTASTS_ACME_RETRY_MAX_HOURS',
      int(1, 168, 24).transform((h) => h * 3_600_000),
    ),
    maxOrdersPerPass: setting('MTASTS_ACME_ORDERS_PER_PASS', int(1, 1000, 10)),
    /** Of those, orders for names without a certificate yet (renewals go first). */
    maxNewOrdersPerPass: setting('MTASTS_ACME_NEW_ORDERS_PER_PASS', int(1, 1000, 5)),
    orderTimeoutMs: setting('MTASTS_ACME_ORDER_TIMEOUT_MS', int(10000, 3600000, 300000)),
    requestTimeoutMs: setting('MTASTS_ACME_REQUEST_TIMEOUT_MS', int(1000, 120000, 30000)),
    /** How often the certificate manager looks for names to order or renew. */
    reconcileIntervalMs: setting(
      'MTASTS_ACME_INTERVAL_SECONDS',
      int(10, 86400, 60).transform((s) => s * 1000),
    ),
  }),
  /** How the app runs as a service (see README, Running it). */
  service: z.object({
    /** Socket Mode: the first wait before reconnecting after the socket dropped; doubled per failure up to the max. */
    reconnectMinMs: setting('MTASTS_SLACK_RECONNECT_MIN_MS', int(100, 600000, 1000)),
    reconnectMaxMs: setting('MTASTS_SLACK_RECONNECT_MAX_MS', int(1000, 3600000, 300000)),
    /** How often the app checks that its database answers and is still its file, and (HTTP mode) that Slack answers. */
    healthIntervalMs: setting('MTASTS_HEALTH_INTERVAL_MS', int(1000, 3600000, 15000)),
    /** SIGTERM/SIGINT: what is still running gets this long to end; then the process exits anyway. */
    shutdownTimeoutMs: setting('MTASTS_SHUTDOWN_TIMEOUT_MS', int(1000, 600000, 10000)),
    /** GET /metrics asks for `Authorization: Bearer <this>` when set; open when null. */
    metricsToken: setting('MTASTS_METRICS_TOKEN', optionalText()),
  }),
  engine: engineSettings,
});

type AppSettings = z.output<typeof appSettings>;

/** Limits of the HTTP listener, and of what /slack/events reads before the signature is checked. */
export type HttpLimits = AppSettings['http'];
export type CheckLimits = AppSettings['checkLimits'];
export type ServiceSettings = AppSettings['service'];

/** The settings as read, with OAuth and the IMAP mailbox null when not asked for. */
export type AppConfig = Omit<AppSettings, 'oauth' | 'tlsrptImap'> & {
  oauth: OAuthConfig | null;
  tlsrptImap: ImapSettings | null;
};

/** A bad setting: its variable, and what is wrong with it (the line says both). */
type Problem = readonly [variable: string, message: string] | null;

/** A rule between settings; it runs only when the variables it reads were read without a problem. */
interface Rule<T> {
  reads: readonly string[];
  check: (settings: T, env: Env) => Problem;
}

const oauthOn = (s: AppSettings) => Boolean(s.oauth.clientId && s.oauth.clientSecret && s.oauth.stateSecret);

/** Taking in report e-mail needs no Slack token (the app posts the alerts it queues); nor does OAuth mode, where each
 * workspace's token comes with its installation. */
function botTokenProblem(s: AppSettings, env: Env, purpose: Purpose): Problem {
  const ok = BOT_TOKEN.test(s.botToken);
  if (purpose === 'ingest' || oauthOn(s))
    return s.botToken === '' || ok ? null : ['SLACK_BOT_TOKEN', 'must be a bot token starting with xoxb-'];
  if (env.SLACK_BOT_TOKEN === undefined)
    return [
      'SLACK_BOT_TOKEN',
      `is not set: the bot token (xoxb-...) from the app's "OAuth & Permissions" page (${WHERE_TOKENS})`,
    ];
  return ok
    ? null
    : [
        'SLACK_BOT_TOKEN',
        `must be a bot token starting with xoxb- (from "OAuth & Permissions", ${WHERE_TOKENS})`,
      ];
}

function oauthProblem(s: AppSettings): Problem {
  const given = OAUTH_VARIABLES.filter(
    (_, i) => [s.oauth.clientId, s.oauth.clientSecret, s.oauth.stateSecret][i],
  );
  const missing = OAUTH_VARIABLES.find((v) => !given.includes(v));
  if (given.length === 0 || missing === undefined) return null;
  return [
    missing,
    'is not set: multi-workspace install needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET ("Basic Information" > App Credentials) and SLACK_STATE_SECRET (any long random string)',
  ];
}

const IMAP = [
  'MTASTS_TLSRPT_IMAP_URL',
  'MTASTS_TLSRPT_IMAP_PASSWORD',
  'MTASTS_TLSRPT_IMAP_TOKEN_FILE',
] as const;

function imapAuthProblem({ tlsrptImap: m }: AppSettings): Problem {
  if (m.url === null)
    return m.password === '' && m.tokenFile === ''
      ? null
      : [
          'MTASTS_TLSRPT_IMAP_URL',
          'is not set, but an IMAP password or token file is: set the mailbox too, e.g. imaps://tls-reports%40example.com@imap.example.com/INBOX',
        ];
  if ((m.password === '') !== (m.tokenFile === '')) return null;
  return m.password === ''
    ? [
        'MTASTS_TLSRPT_IMAP_URL',
        'needs MTASTS_TLSRPT_IMAP_PASSWORD (an app password) or MTASTS_TLSRPT_IMAP_TOKEN_FILE (a file holding an OAuth2 access token)',
      ]
    : ['MTASTS_TLSRPT_IMAP_PASSWORD', 'and MTASTS_TLSRPT_IMAP_TOKEN_FILE are both set: set one of them'];
}

/** A folder messages are moved to must not be the one reports are read from. */
const imapFolderRule = (variable: string, field: 'doneFolder' | 'rejectFolder'): Rule<AppSettings> => ({
  reads: ['MTASTS_TLSRPT_IMAP_URL', variable],
  check: ({ tlsrptImap: m }) =>
    m.url && m[field].toLowerCase() === m.url.folder.toLowerCase()
      ? [
          variable,
          `is the folder reports are read from ("${m[field]}"): messages moved there would be read again`,
        ]
      : null,
});

type Purpose = 'app' | 'sweep' | 'ingest';

/** The rules between the app's settings, in the order a set-up meets them. */
function appRules(purpose: Purpose): Rule<AppSettings>[] {
  const slack = [...OAUTH_VARIABLES, 'SLACK_BOT_TOKEN'];
  return [
    { reads: [], check: oauthProblem },
    { reads: slack, check: (s, env) => botTokenProblem(s, env, purpose) },
    {
      reads: [...slack, 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET'],
      check: (s) =>
        purpose === 'app' && !s.appToken && !s.signingSecret
          ? [
              'SLACK_SIGNING_SECRET',
              'is not set: HTTP mode needs the signing secret from the app\'s "Basic Information" page (or set SLACK_APP_TOKEN for Socket Mode)',
            ]
          : null,
    },
    {
      reads: ['MTASTS_HTTP_HEADERS_TIMEOUT_MS', 'MTASTS_HTTP_REQUEST_TIMEOUT_MS'],
      check: ({ http: h }) =>
        h.headersTimeoutMs > h.requestTimeoutMs
          ? [
              'MTASTS_HTTP_HEADERS_TIMEOUT_MS',
              `(${h.headersTimeoutMs}) must not exceed MTASTS_HTTP_REQUEST_TIMEOUT_MS (${h.requestTimeoutMs}): the headers are part of the request`,
            ]
          : null,
    },
    {
      reads: [...OAUTH_VARIABLES, 'MTASTS_OPERATOR_CHANNEL'],
      check: (s) =>
        oauthOn(s) && s.operatorChannel && s.operatorChannel.team === null
          ? [
              'MTASTS_OPERATOR_CHANNEL',
              `must name its workspace with OAuth (several workspaces): T0123ABCD:${s.operatorChannel.channel}`,
            ]
          : null,
    },
    { reads: IMAP, check: imapAuthProblem },
    imapFolderRule('MTASTS_TLSRPT_IMAP_DONE_FOLDER', 'doneFolder'),
    imapFolderRule('MTASTS_TLSRPT_IMAP_REJECT_FOLDER', 'rejectFolder'),
  ];
}

/** LOG_FORMAT: `json` for one JSON object a line, `text` (the default) for human lines. Read first, before the rest. */
export function loadLogFormat(env: Env = process.env): 'text' | 'json' {
  const v = (env.LOG_FORMAT ?? '').trim().toLowerCase();
  if (v === '' || v === 'text') return 'text';
  if (v === 'json') return 'json';
  throw new ConfigError(`LOG_FORMAT must be "json" or "text", got "${(env.LOG_FORMAT ?? '').slice(0, 40)}"`);
}

/** The Slack app's settings; each missing or malformed one is a line naming the variable and where to get it. */
export function loadAppConfig(env: Env = process.env, purpose: Purpose = 'app'): AppConfig {
  const s = readSettings(appSettings, env, appRules(purpose));
  const { url, password, tokenFile, ...mailbox } = s.tlsrptImap;
  const auth = password !== '' ? { password: new Secret(password) } : { tokenFile };
  return {
    ...s,
    oauth: oauthOn(s) ? s.oauth : null,
    tlsrptImap: url ? { ...url, ...mailbox, auth, operator: s.operatorChannel } : null,
    service: { ...s.service, reconnectMaxMs: Math.max(s.service.reconnectMinMs, s.service.reconnectMaxMs) },
  };
}

/**
 * Reads every setting of `schema` from its variable, then the rules; throws one ConfigError with a line for each bad
 * setting (all of them), or returns the settings typed by the schema.
 */
function readSettings<S extends z.ZodObject>(
  schema: S,
  env: Env,
  rules: readonly Rule<z.output<S>>[] = [],
): z.output<S> {
  const lines: string[] = [];
  const bad = new Set<string>();
  const report = (p: Problem) => {
    if (p === null) return;
    bad.add(p[0]);
    lines.push(`${p[0]} ${p[1]}`);
  };
  const settings = readShape(schema, env, report) as z.output<S>;
  const known = new Set(declaredVariables(schema));
  for (const rule of rules) {
    const unknown = rule.reads.find((v) => !known.has(v));
    if (unknown !== undefined) throw new Error(`a rule reads ${unknown}, which no setting declares`);
    if (!rule.reads.some((v) => bad.has(v))) report(rule.check(settings, env));
  }
  if (lines.length > 0) throw new ConfigError(lines.join('\n'));
  return settings;
}

/** A group's fields, each read from its own variable; a bad one is reported and left undefined. */
function readShape(schema: z.ZodType, env: Env, report: (p: Problem) => void): unknown {
  const variable = variables.get(schema)?.variable;
  if (variable !== undefined) {
    const read = schema.safeParse(env[variable]);
    if (read.success) return read.data;
    report([variable, read.error.issues[0]?.message ?? 'is invalid']);
    return undefined;
  }
  if (!(schema instanceof z.ZodObject))
    throw new Error('a setting without its variable: declare it with setting()');
  return Object.fromEntries(
    Object.entries(schema.shape).map(([field, s]) => [field, readShape(s as z.ZodType, env, report)]),
  );
}

function declaredVariables(schema: z.ZodType): string[] {
  const variable = variables.get(schema)?.variable;
  if (variable !== undefined) return [variable];
  if (!(schema instanceof z.ZodObject)) return [];
  return Object.values(schema.shape).flatMap((s) => declaredVariables(s as z.ZodType));
}

/** One name per variable: a variable declared by two fields is a mistake caught when this module loads. */
for (const schema of [appSettings, domainConnectSettings]) {
  const names = declaredVariables(schema);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`${twice} is declared by two settings`);
}

/**
 * DATABASE_URL: a postgres:// or postgresql:// URL, or null when unset. A message never repeats the value: it may hold
 * the password.
 */
function postgresUrl() {
  return z
    .string()
    .optional()
    .transform((v, ctx): string | null => {
      if (unset(v)) return null;
      let url: URL;
      try {
        url = new URL(v.trim());
      } catch {
        return problem(ctx, 'must be a URL such as postgres://user:password@host:5432/mtasts');
      }
      if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
        return problem(
          ctx,
          'must start with postgres:// or postgresql:// (PostgreSQL); for SQLite set DATABASE_PATH',
        );
      return v.trim();
    });
}

/** MTASTS_WEBHOOKS: the named webhooks (webhooks/destinations.ts); a message never repeats a URL. */
function webhookList() {
  return z
    .string()
    .optional()
    .transform((v, ctx): Webhook[] => {
      const r = parseWebhooks(v);
      return r.ok ? r.webhooks : problem(ctx, r.error);
    });
}

/** MTASTS_OPERATOR_CHANNEL: a channel id (C… or G…), after its workspace's id and a colon (T…:C…) with OAuth. */
function operatorChannel() {
  return z
    .string()
    .optional()
    .transform((value, ctx): OperatorChannel | null => {
      const v = value?.trim() ?? '';
      if (v === '') return null;
      const m = /^(?:([TE][A-Z0-9]{1,30}):)?([CG][A-Z0-9]{1,30})$/.exec(v);
      if (!m?.[2])
        return problem(
          ctx,
          `must be a channel id such as C0123ABCD, or T0123ABCD:C0123ABCD to name its workspace, got "${v.slice(0, 60)}" (the id is at the bottom of the channel's details)`,
        );
      return { team: m[1] ?? null, channel: m[2] };
    });
}

type ImapAccount = Pick<ImapSettings, 'account' | 'host' | 'port' | 'implicitTls' | 'user' | 'folder'>;

/**
 * MTASTS_TLSRPT_IMAP_URL: imaps://user@host[:port][/folder] (imap:// for STARTTLS), a user name holding "@" written
 * as %40; null when unset. No message repeats the URL (a user may have put a password in it).
 */
function imapUrl() {
  return z
    .string()
    .optional()
    .transform((v, ctx): ImapAccount | null => {
      if (unset(v)) return null;
      const account = imapAccount(v.trim());
      return typeof account === 'string' ? problem(ctx, account) : account;
    });
}

/** The account the URL names, or what is wrong with it. */
function imapAccount(raw: string): ImapAccount | string {
  const bad = (why: string) => `${why} (expected imaps://user@imap.example.com/INBOX)`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return bad('is not a URL');
  }
  if (url.password !== '')
    return 'must not hold the password (the URL is shown in logs): put it in MTASTS_TLSRPT_IMAP_PASSWORD';
  if (url.protocol !== 'imaps:' && url.protocol !== 'imap:')
    return bad('must start with imaps:// (or imap:// for STARTTLS)');
  if (url.hostname === '') return bad('has no host');
  if (url.username === '') return bad('has no user name');
  if (url.search !== '' || url.hash !== '') return bad('must not have a query or a fragment');
  let user: string;
  let folder: string;
  try {
    user = decodeURIComponent(url.username);
    folder = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'INBOX';
  } catch {
    return bad('has a broken %-escape');
  }
  const implicitTls = url.protocol === 'imaps:';
  const port = url.port === '' ? (implicitTls ? 993 : 143) : Number(url.port);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    account: `${url.protocol}//${url.username}@${shown}:${port}`,
    host,
    port,
    implicitTls,
    user,
    folder,
  };
}

/** A folder messages are moved to (created when missing). */
function imapFolder(fallback: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const folder = v?.trim() || fallback;
      if (/[\u0000-\u001f\u007f*%]/.test(folder) || folder.length > 200)
        return problem(
          ctx,
          `must be a folder name such as "${fallback}", without control characters, * or %`,
        );
      return folder;
    });
}

/** A listen address, host:port ([v6]:port; port 0: any free one), as { host, port }; `fallback` when unset (null: off). */
function listenAddress<F extends string | null>(fallback: F) {
  type Address = { host: string; port: number };
  type Out = F extends string ? Address : Address | null;
  return z
    .string()
    .optional()
    .transform((v, ctx): Out => {
      const text = unset(v) ? fallback : v.trim();
      if (text === null) return null as Out;
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text);
      const host = m?.[1] ?? m?.[2] ?? '';
      const port = Number(m?.[3]);
      if (!m || isIP(host) === 0 || port > 65535)
        return problem(ctx, `must be ip:port such as 0.0.0.0:443 or [::]:443, got "${text.slice(0, 60)}"`);
      return { host, port } as Out;
    });
}

/** An https:// URL (an ACME directory); `fallback` when unset. */
function httpsUrl(fallback: string) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const text = unset(v) ? fallback : v.trim();
      return /^https:\/\/[^\s/]+(\/\S*)?$/.test(text)
        ? text
        : problem(ctx, `must be an https:// URL, got "${text.slice(0, 80)}"`);
    });
}

/** MTASTS_HOSTING_NAME: a host name with at least two labels (lower case, no trailing dot); null when unset. */
function hostingName() {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (unset(v)) return null;
      const name = v.trim().toLowerCase().replace(/\.$/, '');
      const why = hostnameProblem(name) ?? (name.includes('.') ? null : 'it has a single label');
      return why === null
        ? name
        : problem(
            ctx,
            `must be the host name under which each enrollment's CNAME target <token>.<name> lies, e.g. mta-sts.bot.example.net (${why})`,
          );
    });
}

/** MTASTS_HOSTING_ADDRESSES: comma-separated IPv4 and IPv6 addresses; empty when unset. */
function addressList() {
  return z
    .string()
    .optional()
    .transform((v, ctx): string[] => {
      if (unset(v)) return [];
      const list = v.split(',').map((a) => a.trim());
      const bad = list.find((a) => isIP(a) === 0);
      return bad === undefined ? list : problem(ctx, `"${bad.slice(0, 60)}" is not an IP address`);
    });
}
