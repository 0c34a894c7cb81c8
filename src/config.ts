import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { validate as validateCron } from 'node-cron';
import { z } from 'zod';
import { type ImapSettings, type OperatorChannel, Secret } from './tlsrpt/imap.js';

/** The only module that reads the environment: every setting is parsed and checked here, once. */

export class ConfigError extends Error {}

const dnsServer = (value: string): string | null => {
  const v = value.trim();
  if (isIP(v)) return v;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(v);
  if (v4?.[1] && isIP(v4[1]) && Number(v4[2]) > 0 && Number(v4[2]) < 65536) return v;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(v);
  if (v6?.[1] && isIP(v6[1]) === 6 && Number(v6[2]) > 0 && Number(v6[2]) < 65536) return v;
  return null;
};

const int = (min: number, max: number, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
        ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, got "${v}"` });
        return z.NEVER;
      }
      return Number(v);
    });

const flag = (fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const s = v.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(s)) return true;
      if (['0', 'false', 'no', 'off'].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `must be 1/on or 0/off, got "${v}"` });
      return z.NEVER;
    });

const cronExpression = (fallback: string, meaning: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const expression = v === undefined || v.trim() === '' ? fallback : v.trim();
      if (!validateCron(expression)) {
        ctx.addIssue({
          code: 'custom',
          message: `is not a cron expression: "${expression}" (e.g. "${fallback}", ${meaning})`,
        });
        return z.NEVER;
      }
      return expression;
    });

const engineSchema = z.object({
  MTASTS_DNS_SERVERS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const servers = v.split(',').map((s) => s.trim());
      const bad = servers.find((s) => dnsServer(s) === null);
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `"${bad}" is not an ip or ip:port (IPv6 as [ip]:port)` });
        return z.NEVER;
      }
      return servers;
    }),
  MTASTS_ALLOW_PRIVATE_NETWORKS: flag(false),
  MTASTS_TIMEOUT_MS: int(100, 120000, 10000),
  MTASTS_CERT_WARN_DAYS: int(1, 365, 14),
  MTASTS_SMTP_PROBE: flag(true),
  MTASTS_MAX_MX_HOSTS: int(1, 100, 10),
  MTASTS_MAX_ADDRESSES_PER_MX: int(1, 64, 8),
  MTASTS_EHLO_NAME: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return defaultEhloName();
      if (!/^[A-Za-z0-9.-]{1,253}$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: `must be a host name, got "${v}"` });
        return z.NEVER;
      }
      return v;
    }),
});

const domainConnectSchema = z.object({
  MTASTS_DC_PRIVATE_KEY_FILE: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return null;
      try {
        const pem = readFileSync(v, 'utf8');
        createPrivateKey(pem);
        return pem;
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          message: `cannot be read as a PEM private key (${(err as Error).message})`,
        });
        return z.NEVER;
      }
    }),
  MTASTS_DC_KEY_HOST: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return '_dck1';
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(v)) {
        ctx.addIssue({ code: 'custom', message: `must be a host name such as _dck1, got "${v}"` });
        return z.NEVER;
      }
      return v;
    }),
});

/** The Domain Connect signing key, or null when this installation has none. */
export function loadDomainConnectKey(
  env: NodeJS.ProcessEnv = process.env,
): { privateKeyPem: string; keyHost: string } | null {
  const parsed = domainConnectSchema.safeParse(env);
  if (!parsed.success) throw explain(parsed.error);
  return parsed.data.MTASTS_DC_PRIVATE_KEY_FILE
    ? { privateKeyPem: parsed.data.MTASTS_DC_PRIVATE_KEY_FILE, keyHost: parsed.data.MTASTS_DC_KEY_HOST }
    : null;
}

export interface EngineConfig {
  dnsServers: string[] | undefined;
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  certWarnDays: number;
  smtpProbe: boolean;
  /** MX hosts probed per check (the most preferred), and addresses probed per MX host. */
  maxMxHosts: number;
  maxAddressesPerMx: number;
  ehloName: string;
}

function defaultEhloName(): string {
  const h = hostname();
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(h) ? h : 'mtasts-bot.invalid';
}

/** One line naming the variable and what is wrong with it. */
function explain(error: z.ZodError, hints: Record<string, string> = {}): ConfigError {
  const issue = error.issues[0];
  const name = String(issue?.path[0] ?? 'configuration');
  const hint = hints[name] ? ` (${hints[name]})` : '';
  return new ConfigError(`${name} ${issue?.message ?? 'is invalid'}${hint}`);
}

export function loadEngineConfig(env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const parsed = engineSchema.safeParse(env);
  if (!parsed.success) throw explain(parsed.error);
  const c = parsed.data;
  return {
    dnsServers: c.MTASTS_DNS_SERVERS,
    allowPrivateNetworks: c.MTASTS_ALLOW_PRIVATE_NETWORKS,
    timeoutMs: c.MTASTS_TIMEOUT_MS,
    certWarnDays: c.MTASTS_CERT_WARN_DAYS,
    smtpProbe: c.MTASTS_SMTP_PROBE,
    maxMxHosts: c.MTASTS_MAX_MX_HOSTS,
    maxAddressesPerMx: c.MTASTS_MAX_ADDRESSES_PER_MX,
    ehloName: c.MTASTS_EHLO_NAME,
  };
}

const WHERE_TOKENS = 'see the README: Slack app settings, "Install App" and "Basic Information" pages';

const appSchema = z.object({
  SLACK_BOT_TOKEN: z
    .string({
      error: `is not set: the bot token (xoxb-...) from the app's "OAuth & Permissions" page (${WHERE_TOKENS})`,
    })
    .refine((v) => /^xoxb-[A-Za-z0-9-]+$/.test(v.trim()), {
      message: `must be a bot token starting with xoxb- (from "OAuth & Permissions", ${WHERE_TOKENS})`,
    }),
  SLACK_APP_TOKEN: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || /^xapp-[A-Za-z0-9-]+$/.test(v.trim()), {
      message:
        'must be an app-level token starting with xapp- (Basic Information > App-Level Tokens, scope connections:write)',
    }),
  SLACK_SIGNING_SECRET: z.string().optional(),
  SLACK_CLIENT_ID: z.string().optional(),
  SLACK_CLIENT_SECRET: z.string().optional(),
  SLACK_STATE_SECRET: z.string().optional(),
  SLACK_REDIRECT_URI: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || /^https:\/\/\S+$/.test(v.trim()), {
      message:
        'must be the https:// URL of /slack/oauth_redirect on this app, as set in the app\'s "OAuth & Permissions"',
    }),
  SLACK_API_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v.trim() === '' || /^https?:\/\/[^\s]+\/$/.test(v.trim()), {
      message: 'must be an http(s) URL ending in "/", e.g. https://slack.com/api/',
    }),
  PORT: int(0, 65535, 3000),
  DATABASE_PATH: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? 'db/mtasts.sqlite' : v)),
  MTASTS_SCHEDULE: cronExpression('0 * * * *', 'hourly'),
  MTASTS_MAX_DOMAINS_PER_TEAM: int(1, 100000, 100),
  MTASTS_HTTP_HEADERS_TIMEOUT_MS: int(100, 600000, 10000),
  MTASTS_HTTP_REQUEST_TIMEOUT_MS: int(100, 3600000, 30000),
  MTASTS_HTTP_KEEPALIVE_TIMEOUT_MS: int(100, 600000, 5000),
  MTASTS_HTTP_MAX_CONNECTIONS: int(1, 1000000, 1000),
  MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS: int(1, 1000000, 100),
  MTASTS_HTTP_MAX_HEADER_BYTES: int(1024, 1048576, 16384),
  MTASTS_SLACK_MAX_BODY_BYTES: int(1024, 16777216, 1048576),
  MTASTS_SLACK_REPLAY_MEMORY: int(100, 10000000, 100000),
  MTASTS_CHECKS_PER_USER: int(1, 100, 1),
  MTASTS_CHECKS_PER_TEAM: int(1, 1000, 4),
  MTASTS_CHECKS_PER_TEAM_PER_MINUTE: int(1, 100000, 20),
  MTASTS_DB_BUSY_TIMEOUT_MS: int(0, 60000, 200),
  MTASTS_MONITOR_CONCURRENCY: int(1, 1024, 32),
  MTASTS_SMTP_PER_ADDRESS: int(1, 64, 2),
  MTASTS_SMTP_CONCURRENCY: int(1, 1024, 64),
  MTASTS_REMINDER_HOURS: int(1, 720, 24),
  MTASTS_SLACK_TIMEOUT_MS: int(100, 120000, 10000),
  MTASTS_TLSRPT_KEEP_UNWATCHED: flag(false),
  MTASTS_TLSRPT_ALERT_PERCENT: int(1, 100, 5),
  MTASTS_TLSRPT_ALERT_MIN_SESSIONS: int(1, 1000000, 20),
  MTASTS_TLSRPT_DIGEST_SCHEDULE: cronExpression('0 9 * * *', 'daily at 09:00'),
  MTASTS_TLSRPT_RETENTION_DAYS: int(1, 3650, 400),
  MTASTS_TLSRPT_MAX_BYTES: int(4096, 16777216, 1048576),
  MTASTS_TLSRPT_MAX_SESSIONS: int(1000, 1000000000000, 1000000000),
  MTASTS_TLSRPT_MAX_PERIOD_DAYS: int(1, 31, 3),
  MTASTS_TLSRPT_ALERT_MAX_AGE_DAYS: int(0, 30, 2),
  MTASTS_TLSRPT_PARSE_TIMEOUT_MS: int(10, 60000, 2000),
  MTASTS_TLSRPT_CLIENT_PER_MINUTE: int(1, 1000000, 60),
  MTASTS_TLSRPT_CLIENT_BURST: int(1, 1000000, 120),
  MTASTS_TLSRPT_DOMAIN_PER_MINUTE: int(1, 1000000, 10),
  MTASTS_TLSRPT_DOMAIN_BURST: int(1, 1000000, 200),
  MTASTS_TLSRPT_MIN_FREE_MB: int(0, 1000000000, 512),
  MTASTS_TLSRPT_IMAP_URL: z.string().optional(),
  MTASTS_TLSRPT_IMAP_PASSWORD: z.string().optional(),
  MTASTS_TLSRPT_IMAP_TOKEN_FILE: z.string().optional(),
  MTASTS_TLSRPT_IMAP_POLL: cronExpression('*/5 * * * *', 'every 5 minutes'),
  MTASTS_TLSRPT_IMAP_DONE_FOLDER: z.string().optional(),
  MTASTS_TLSRPT_IMAP_REJECT_FOLDER: z.string().optional(),
  MTASTS_TLSRPT_IMAP_BATCH: int(1, 1000, 50),
  MTASTS_TLSRPT_IMAP_MAX_MESSAGE_BYTES: int(65536, 104857600, 20971520),
  MTASTS_TLSRPT_IMAP_TIMEOUT_MS: int(1000, 600000, 30000),
  MTASTS_TLSRPT_IMAP_ALERT_HOURS: int(1, 720, 24),
  MTASTS_OPERATOR_CHANNEL: z.string().optional(),
  MTASTS_SLACK_RECONNECT_MIN_MS: int(100, 600000, 1000),
  MTASTS_SLACK_RECONNECT_MAX_MS: int(1000, 3600000, 300000),
  MTASTS_HEALTH_INTERVAL_MS: int(1000, 3600000, 15000),
  MTASTS_SHUTDOWN_TIMEOUT_MS: int(1000, 600000, 10000),
  MTASTS_METRICS_TOKEN: z.string().optional(),
});

/** Limits of the HTTP listener, and of what /slack/events reads before the signature is checked. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxHeaderBytes: number;
  /** Largest body /slack/events reads; a larger one is refused (413) before it is read. */
  slackBodyBytes: number;
  /** Signatures remembered (for 5 minutes) so that a captured request cannot be replayed. */
  replayMemory: number;
}

/** Checks run from Slack: at once per user and per workspace, and started per workspace per minute. */
export interface CheckLimits {
  perUser: number;
  perTeam: number;
  perTeamPerMinute: number;
}

export interface OAuthConfig {
  clientId: string;
  clientSecret: string;
  stateSecret: string;
  redirectUri: string | null;
}

export interface AppConfig {
  /** The single workspace's bot token; empty in multi-workspace (OAuth) mode without one. */
  botToken: string;
  /** Multi-workspace install through OAuth, when its three settings are given. */
  oauth: OAuthConfig | null;
  appToken: string | null;
  signingSecret: string | null;
  apiUrl: string | null;
  port: number;
  databasePath: string;
  schedule: string;
  maxDomainsPerTeam: number;
  /** The HTTP listener (events in HTTP mode, /healthz, /tlsrpt, OAuth) in both modes. */
  http: HttpLimits;
  /** Checks started from Slack (command, buttons, setup form, App Home). */
  checkLimits: CheckLimits;
  /** How long one SQLite statement waits for another process's lock before "database busy". */
  dbBusyTimeoutMs: number;
  monitorConcurrency: number;
  /** SMTP connections at once to one address, and in all, during a pass. */
  smtpPerAddress: number;
  smtpConcurrency: number;
  reminderHours: number;
  /** Each Slack Web API call posting an alert is abandoned (and retried later) after this. */
  slackTimeoutMs: number;
  tlsrpt: {
    keepUnwatched: boolean;
    alertRate: number;
    alertMinSessions: number;
    digestSchedule: string;
    /** Reports whose period ended longer ago are deleted (at each digest). */
    retentionDays: number;
    /** The intake's limits (see README, TLS-RPT reports). */
    alertMaxAgeDays: number;
    maxBytes: number;
    maxSessions: number;
    maxPeriodDays: number;
    parseTimeoutMs: number;
    clientRate: { perMinute: number; burst: number };
    domainRate: { perMinute: number; burst: number };
    minFreeMb: number;
  };
  /** The mailbox TLS-RPT reports are read from over IMAP (MTASTS_TLSRPT_IMAP_URL), or null. */
  tlsrptImap: ImapSettings | null;
  /** Where alerts about the app itself go (MTASTS_OPERATOR_CHANNEL), and whose workspace sees its status; or null. */
  operatorChannel: OperatorChannel | null;
  /** How the app runs as a service (see README, Running it). */
  service: ServiceSettings;
  engine: EngineConfig;
}

export interface ServiceSettings {
  /** Socket Mode: the first wait before reconnecting after the socket dropped; doubled per failure up to the max. */
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How often the app checks that its database answers and is still its file, and (HTTP mode) that Slack answers. */
  healthIntervalMs: number;
  /** SIGTERM/SIGINT: what is still running gets this long to end; then the process exits anyway. */
  shutdownTimeoutMs: number;
  /** GET /metrics asks for `Authorization: Bearer <this>` when set; open when null. */
  metricsToken: string | null;
}

/** LOG_FORMAT: `json` for one JSON object a line, `text` (the default) for human lines. Read first, before the rest. */
export function loadLogFormat(env: NodeJS.ProcessEnv = process.env): 'text' | 'json' {
  const v = (env.LOG_FORMAT ?? '').trim().toLowerCase();
  if (v === '' || v === 'text') return 'text';
  if (v === 'json') return 'json';
  throw new ConfigError(`LOG_FORMAT must be "json" or "text", got "${(env.LOG_FORMAT ?? '').slice(0, 40)}"`);
}

/** The Slack app's settings; a missing or malformed one is one line naming the variable and where to get it. */
export function loadAppConfig(
  env: NodeJS.ProcessEnv = process.env,
  purpose: 'app' | 'sweep' | 'ingest' = 'app',
): AppConfig {
  // Taking in report e-mail needs no Slack token (the app posts the alerts it queues); nor does OAuth mode, where each
  // workspace's token comes with its installation.
  const oauthKeys = ['SLACK_CLIENT_ID', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET'];
  const oauthAsked = oauthKeys.filter((k) => (env[k] ?? '').trim() !== '');
  if (oauthAsked.length > 0 && oauthAsked.length < 3) {
    const missing = oauthKeys.filter((k) => !oauthAsked.includes(k));
    throw new ConfigError(
      `${missing[0]} is not set: multi-workspace install needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET ("Basic Information" > App Credentials) and SLACK_STATE_SECRET (any long random string)`,
    );
  }
  const tokenOptional = purpose === 'ingest' || oauthAsked.length === 3;
  const schema = tokenOptional
    ? appSchema.extend({
        SLACK_BOT_TOKEN: z
          .string()
          .optional()
          .default('')
          .refine((v) => v.trim() === '' || /^xoxb-[A-Za-z0-9-]+$/.test(v.trim()), {
            message: 'must be a bot token starting with xoxb-',
          }),
      })
    : appSchema;
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw explain(parsed.error);
  const c = parsed.data;
  if (c.MTASTS_HTTP_HEADERS_TIMEOUT_MS > c.MTASTS_HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      `MTASTS_HTTP_HEADERS_TIMEOUT_MS (${c.MTASTS_HTTP_HEADERS_TIMEOUT_MS}) must not exceed MTASTS_HTTP_REQUEST_TIMEOUT_MS (${c.MTASTS_HTTP_REQUEST_TIMEOUT_MS}): the headers are part of the request`,
    );
  }
  const appToken = c.SLACK_APP_TOKEN?.trim() || null;
  const signingSecret = c.SLACK_SIGNING_SECRET?.trim() || null;
  if (purpose === 'app' && !appToken && !signingSecret) {
    throw new ConfigError(
      'SLACK_SIGNING_SECRET is not set: HTTP mode needs the signing secret from the app\'s "Basic Information" page (or set SLACK_APP_TOKEN for Socket Mode)',
    );
  }
  const operator = operatorChannel(c.MTASTS_OPERATOR_CHANNEL, oauthAsked.length === 3);
  return {
    botToken: c.SLACK_BOT_TOKEN.trim(),
    oauth:
      oauthAsked.length === 3
        ? {
            clientId: (c.SLACK_CLIENT_ID ?? '').trim(),
            clientSecret: (c.SLACK_CLIENT_SECRET ?? '').trim(),
            stateSecret: (c.SLACK_STATE_SECRET ?? '').trim(),
            redirectUri: c.SLACK_REDIRECT_URI?.trim() || null,
          }
        : null,
    appToken,
    signingSecret,
    apiUrl: c.SLACK_API_URL?.trim() || null,
    port: c.PORT,
    databasePath: c.DATABASE_PATH,
    schedule: c.MTASTS_SCHEDULE,
    maxDomainsPerTeam: c.MTASTS_MAX_DOMAINS_PER_TEAM,
    http: {
      headersTimeoutMs: c.MTASTS_HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: c.MTASTS_HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeoutMs: c.MTASTS_HTTP_KEEPALIVE_TIMEOUT_MS,
      maxConnections: c.MTASTS_HTTP_MAX_CONNECTIONS,
      maxConnectionsPerAddress: c.MTASTS_HTTP_MAX_CONNECTIONS_PER_ADDRESS,
      maxHeaderBytes: c.MTASTS_HTTP_MAX_HEADER_BYTES,
      slackBodyBytes: c.MTASTS_SLACK_MAX_BODY_BYTES,
      replayMemory: c.MTASTS_SLACK_REPLAY_MEMORY,
    },
    checkLimits: {
      perUser: c.MTASTS_CHECKS_PER_USER,
      perTeam: c.MTASTS_CHECKS_PER_TEAM,
      perTeamPerMinute: c.MTASTS_CHECKS_PER_TEAM_PER_MINUTE,
    },
    dbBusyTimeoutMs: c.MTASTS_DB_BUSY_TIMEOUT_MS,
    monitorConcurrency: c.MTASTS_MONITOR_CONCURRENCY,
    smtpPerAddress: c.MTASTS_SMTP_PER_ADDRESS,
    smtpConcurrency: c.MTASTS_SMTP_CONCURRENCY,
    reminderHours: c.MTASTS_REMINDER_HOURS,
    slackTimeoutMs: c.MTASTS_SLACK_TIMEOUT_MS,
    tlsrpt: {
      keepUnwatched: c.MTASTS_TLSRPT_KEEP_UNWATCHED,
      alertRate: c.MTASTS_TLSRPT_ALERT_PERCENT / 100,
      alertMinSessions: c.MTASTS_TLSRPT_ALERT_MIN_SESSIONS,
      digestSchedule: c.MTASTS_TLSRPT_DIGEST_SCHEDULE,
      retentionDays: c.MTASTS_TLSRPT_RETENTION_DAYS,
      alertMaxAgeDays: c.MTASTS_TLSRPT_ALERT_MAX_AGE_DAYS,
      maxBytes: c.MTASTS_TLSRPT_MAX_BYTES,
      maxSessions: c.MTASTS_TLSRPT_MAX_SESSIONS,
      maxPeriodDays: c.MTASTS_TLSRPT_MAX_PERIOD_DAYS,
      parseTimeoutMs: c.MTASTS_TLSRPT_PARSE_TIMEOUT_MS,
      clientRate: { perMinute: c.MTASTS_TLSRPT_CLIENT_PER_MINUTE, burst: c.MTASTS_TLSRPT_CLIENT_BURST },
      domainRate: { perMinute: c.MTASTS_TLSRPT_DOMAIN_PER_MINUTE, burst: c.MTASTS_TLSRPT_DOMAIN_BURST },
      minFreeMb: c.MTASTS_TLSRPT_MIN_FREE_MB,
    },
    tlsrptImap: imapSettings(c, operator),
    operatorChannel: operator,
    service: {
      reconnectMinMs: c.MTASTS_SLACK_RECONNECT_MIN_MS,
      reconnectMaxMs: Math.max(c.MTASTS_SLACK_RECONNECT_MIN_MS, c.MTASTS_SLACK_RECONNECT_MAX_MS),
      healthIntervalMs: c.MTASTS_HEALTH_INTERVAL_MS,
      shutdownTimeoutMs: c.MTASTS_SHUTDOWN_TIMEOUT_MS,
      metricsToken: c.MTASTS_METRICS_TOKEN?.trim() || null,
    },
    engine: loadEngineConfig(env),
  };
}

type ImapVariables = Pick<
  z.output<typeof appSchema>,
  Extract<keyof z.output<typeof appSchema>, `MTASTS_TLSRPT_IMAP_${string}`>
>;

/**
 * MTASTS_TLSRPT_IMAP_*: the mailbox TLS-RPT reports are read from, or null when no URL is set. No message repeats the
 * URL (a user may have put a password in it) or a secret.
 */
function imapSettings(c: ImapVariables, operator: OperatorChannel | null): ImapSettings | null {
  const raw = c.MTASTS_TLSRPT_IMAP_URL?.trim() ?? '';
  const password = c.MTASTS_TLSRPT_IMAP_PASSWORD ?? '';
  const tokenFile = c.MTASTS_TLSRPT_IMAP_TOKEN_FILE?.trim() ?? '';
  if (raw === '') {
    if (password === '' && tokenFile === '') return null;
    throw new ConfigError(
      'MTASTS_TLSRPT_IMAP_URL is not set, but an IMAP password or token file is: set the mailbox too, e.g. imaps://tls-reports%40example.com@imap.example.com/INBOX',
    );
  }
  const url = imapUrl(raw);
  if ((password === '') === (tokenFile === '')) {
    throw new ConfigError(
      password === ''
        ? 'MTASTS_TLSRPT_IMAP_URL needs MTASTS_TLSRPT_IMAP_PASSWORD (an app password) or MTASTS_TLSRPT_IMAP_TOKEN_FILE (a file holding an OAuth2 access token)'
        : 'MTASTS_TLSRPT_IMAP_PASSWORD and MTASTS_TLSRPT_IMAP_TOKEN_FILE are both set: set one of them',
    );
  }
  const folders = {
    doneFolder: imapFolder(
      'MTASTS_TLSRPT_IMAP_DONE_FOLDER',
      c.MTASTS_TLSRPT_IMAP_DONE_FOLDER,
      'TLS-RPT/processed',
    ),
    rejectFolder: imapFolder(
      'MTASTS_TLSRPT_IMAP_REJECT_FOLDER',
      c.MTASTS_TLSRPT_IMAP_REJECT_FOLDER,
      'TLS-RPT/not-a-report',
    ),
  };
  for (const [name, folder] of Object.entries(folders)) {
    if (folder.toLowerCase() === url.folder.toLowerCase())
      throw new ConfigError(
        `MTASTS_TLSRPT_IMAP_${name === 'doneFolder' ? 'DONE' : 'REJECT'}_FOLDER is the folder reports are read from ("${folder}"): messages moved there would be read again`,
      );
  }
  return {
    ...url,
    ...folders,
    auth: password !== '' ? { password: new Secret(password) } : { tokenFile },
    poll: c.MTASTS_TLSRPT_IMAP_POLL,
    batchSize: c.MTASTS_TLSRPT_IMAP_BATCH,
    maxMessageBytes: c.MTASTS_TLSRPT_IMAP_MAX_MESSAGE_BYTES,
    timeoutMs: c.MTASTS_TLSRPT_IMAP_TIMEOUT_MS,
    alertAfterMs: c.MTASTS_TLSRPT_IMAP_ALERT_HOURS * 3_600_000,
    operator,
  };
}

/** MTASTS_OPERATOR_CHANNEL: a channel id (C… or G…), after its workspace's id and a colon (T…:C…) with OAuth. */
function operatorChannel(value: string | undefined, oauth: boolean): OperatorChannel | null {
  const v = value?.trim() ?? '';
  if (v === '') return null;
  const m = /^(?:([TE][A-Z0-9]{1,30}):)?([CG][A-Z0-9]{1,30})$/.exec(v);
  if (!m?.[2])
    throw new ConfigError(
      `MTASTS_OPERATOR_CHANNEL must be a channel id such as C0123ABCD, or T0123ABCD:C0123ABCD to name its workspace, got "${v.slice(0, 60)}" (the id is at the bottom of the channel's details)`,
    );
  if (oauth && !m[1])
    throw new ConfigError(
      `MTASTS_OPERATOR_CHANNEL must name its workspace with OAuth (several workspaces): T0123ABCD:${m[2]}`,
    );
  return { team: m[1] ?? null, channel: m[2] };
}

/** imaps://user@host[:port][/folder] (imap:// for STARTTLS); a user name holding "@" writes it as %40. */
function imapUrl(
  raw: string,
): Pick<ImapSettings, 'account' | 'host' | 'port' | 'implicitTls' | 'user' | 'folder'> {
  const bad = (why: string) =>
    new ConfigError(`MTASTS_TLSRPT_IMAP_URL ${why} (expected imaps://user@imap.example.com/INBOX)`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('is not a URL');
  }
  if (url.password !== '')
    throw new ConfigError(
      'MTASTS_TLSRPT_IMAP_URL must not hold the password (the URL is shown in logs): put it in MTASTS_TLSRPT_IMAP_PASSWORD',
    );
  if (url.protocol !== 'imaps:' && url.protocol !== 'imap:')
    throw bad('must start with imaps:// (or imap:// for STARTTLS)');
  if (url.hostname === '') throw bad('has no host');
  if (url.username === '') throw bad('has no user name');
  if (url.search !== '' || url.hash !== '') throw bad('must not have a query or a fragment');
  let user: string;
  let folder: string;
  try {
    user = decodeURIComponent(url.username);
    folder = decodeURIComponent(url.pathname.replace(/^\//, '')) || 'INBOX';
  } catch {
    throw bad('has a broken %-escape');
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

function imapFolder(name: string, value: string | undefined, fallback: string): string {
  const folder = value?.trim() || fallback;
  if (/[\u0000-\u001f\u007f*%]/.test(folder) || folder.length > 200)
    throw new ConfigError(
      `${name} must be a folder name such as "${fallback}", without control characters, * or %`,
    );
  return folder;
}
