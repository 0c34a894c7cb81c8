import { existsSync, readFileSync } from 'node:fs';
import { domainArgument, parseArgs, recordsRequest, UsageError } from './args.js';
import type { CheckDeps, CheckOptions } from './core/check.js';
import { processEnv } from './env.js';
import { RecordsInputError, type RolloutHistory } from './generate/records.js';
import { projectFile } from './paths.js';
import type { RuntimeOverrides } from './runtime.js';

// Each command loads only what it needs (dynamic imports below): `help` loads no settings, `check` and `records` no
// Slack and no SQLite, so a one-off command starts about as fast as Node itself.

/** Where the CLI writes, and what a test may swap: the environment, the streams, the network settings. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Overrides for tests: trust roots and ports of loopback peers. */
  engine?: Partial<Pick<CheckOptions, 'ca' | 'policyPort' | 'smtpPort' | 'now'>>;
  /** For tests: the port of Domain Connect's HTTPS requests (443 on the Internet). */
  domainConnectPort?: number;
  deps?: CheckDeps;
  /** For tests: standard input, read up to a limit (null when over it). */
  stdin?: (limit: number) => Promise<Buffer | null>;
  /** For tests: the monitor's clock, poster and settings in `sweep`. */
  sweep?: Pick<RuntimeOverrides, 'now' | 'poster' | 'monitor'>;
}

const USAGE = `usage:
  mtasts check <domain> [--json]     full MTA-STS and TLS-RPT check (exit 0 pass/warn, 1 fail, 2 bad input)
  mtasts records <domain> [--mode testing|enforce|none] [--max-age N] [--mx host ...] [--rua uri ...]
                 [--id ID] [--json]  copy-ready records, policy file, web-server snippets, Domain Connect
  mtasts sweep                       one monitoring pass over every watched domain now (needs SLACK_BOT_TOKEN)
  mtasts ingest-email < message.eml  store a TLS-RPT report e-mail (exit 0 stored or duplicate, 2 not a report, 75 try later)
  mtasts ingest-imap --once          read new report e-mails from MTASTS_TLSRPT_IMAP_URL once (exit 0 read, 1 failed)
  mtasts watch add <domain> [--webhook NAME]   watch a domain without Slack: alerts to the log or a webhook
  mtasts watch list | remove <domain> | mute <domain> [24h|off]   the watch list (mtasts watch help)
  mtasts host add|list|show|verify|set|apply|remove <domain> [--mode testing|enforce|none] [--max-age N]
              [--mx host ...] [--force] [--json]   hosted MTA-STS: the bot serves the policy (mtasts host help)
  mtasts --version                   the version of mtasts-bot
`;

/** Runs one command; returns the exit code. Never throws: bad input is one line on stderr and exit 2. */
export async function main(argv: string[], given?: CliIo): Promise<number> {
  const io = given ?? processIo();
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case 'check':
        return await runCheck(rest, io);
      case 'records':
        return await runRecords(rest, io);
      case 'sweep':
        return await runSweep(rest, io);
      case 'ingest-email':
        return await runIngestEmail(rest, io);
      case 'ingest-imap':
        return await runIngestImap(rest, io);
      case 'watch':
        return await runWatch(rest, io);
      case 'host':
        return await (await import('./hosting/cli.js')).runHost(rest, io);
      case '--version':
      case 'version':
        io.stdout(`mtasts-bot ${packageVersion()}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"; run "mtasts help" for the commands`);
    }
  } catch (err) {
    const { ConfigError } = await import('./settings.js');
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof RecordsInputError) {
      io.stderr(`mtasts: ${err.message}\n`);
      return 2;
    }
    io.stderr(`mtasts: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 70;
  }
}

/** The version in the package.json shipped beside the code. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

async function engineFor(io: CliIo) {
  // settings.js, not config.js: a check reads only the engine's settings and so loads neither zod nor node-cron.
  const [{ createEngine }, { loadEngineConfig, loadDomainConnectKey }] = await Promise.all([
    import('./engine.js'),
    import('./settings.js'),
  ]);
  return createEngine(loadEngineConfig(io.env), loadDomainConnectKey(io.env), {
    ...(io.engine ? { options: io.engine } : {}),
    ...(io.deps ? { deps: io.deps } : {}),
    ...(io.domainConnectPort ? { domainConnectPort: io.domainConnectPort } : {}),
  });
}

async function runCheck(args: string[], io: CliIo): Promise<number> {
  const { positional, flags } = parseArgs(args, { json: false });
  const domain = domainArgument(positional);
  const report = await (await engineFor(io)).check(domain);
  if (flags.has('json')) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout((await import('./render/text.js')).renderReportText(report));
  return report.status === 'fail' ? 1 : 0;
}

async function runRecords(args: string[], io: CliIo): Promise<number> {
  const { positional, json, request } = recordsRequest(args);
  const domain = domainArgument(positional);
  const { recordsFor } = await import('./generate/service.js');
  const history = await rolloutHistory(io, domain.ascii);
  const result = await recordsFor(domain, request, await engineFor(io), history);
  if (json) {
    const { plan, domainConnect } = result;
    io.stdout(`${JSON.stringify({ plan, domainConnect }, null, 2)}\n`);
  } else {
    const [{ wrap }, { renderRecordsText }] = await Promise.all([
      import('./render/text.js'),
      import('./render/records-text.js'),
    ]);
    const dc = result.domainConnect;
    const lines = ['One-click setup (Domain Connect):', ...wrap(dc.message, 80, '  ', '  ')];
    if (dc.applyUrl) lines.push('', `  ${dc.applyUrl}`);
    io.stdout(renderRecordsText(result.plan, lines));
  }
  return 0;
}

/**
 * What the monitor knows of a domain, for the rollout rule: read from the database at DATABASE_PATH when there is one
 * (none is created here), loaded only then.
 */
async function rolloutHistory(io: CliIo, domain: string): Promise<RolloutHistory | null> {
  const { loadAppConfig } = await import('./config.js');
  const config = loadAppConfig(io.env, 'ingest');
  if (!config.databaseUrl && !existsSync(config.databasePath)) return null;
  const [{ openTarget }, { MonitorStore }, { SubscriptionStore }, { TlsRptStore }] = await Promise.all([
    import('./store/db.js'),
    import('./store/monitor.js'),
    import('./store/subscriptions.js'),
    import('./store/tlsrpt.js'),
  ]);
  const db = await openTarget(config);
  try {
    const watched = (await new SubscriptionStore(db).forDomain(domain)).length > 0;
    return {
      watched,
      monitorRead: true,
      cleanSince: watched ? (await new MonitorStore(db).loadState(domain)).cleanSince : null,
      lastReportedFailureAt: await new TlsRptStore(db).lastFailureAt(domain),
    };
  } finally {
    await db.close();
  }
}

/** One monitoring pass now: check every watched domain, compare, post alerts. Exit 0 when the pass ran. */
async function runSweep(args: string[], io: CliIo): Promise<number> {
  parseArgs(args, {});
  const [{ loadAppConfig, loadDomainConnectKey }, { hasSlack, openRuntime }] = await Promise.all([
    import('./config.js'),
    import('./runtime.js'),
  ]);
  // As npm start: with no Slack setting at all the pass runs for the watch list (alerts to the log and webhooks).
  const local = loadAppConfig(io.env, 'ingest');
  const slackless = !hasSlack(local) && !local.appToken && !local.signingSecret;
  const config = slackless ? local : loadAppConfig(io.env, 'sweep');
  const logger = {
    info: (m: string) => io.stderr(`${m}\n`),
    warn: (m: string) => io.stderr(`warning: ${m}\n`),
    error: (m: string) => io.stderr(`error: ${m}\n`),
  };
  const runtime = await openRuntime(config, loadDomainConnectKey(io.env), logger, {
    engine: {
      ...(io.engine ? { options: io.engine } : {}),
      ...(io.deps ? { deps: io.deps } : {}),
    },
    ...(io.sweep ?? {}),
  });
  try {
    const s = await runtime.monitor.runPass();
    // A runtime just opened runs no pass yet; a pass under way in another process is joined, not refused.
    if (!s) throw new Error('sweep: this process was already running a pass');
    io.stdout(
      `sweep: ${s.resumed ? 'resumed' : 'ran'} pass ${s.passId}: ${s.domains} domain(s) checked here, ${s.failures} could not be, ${s.events} event(s), ${s.alerts} alert(s) queued; ${s.delivery.sent} sent, ${s.delivery.retrying} to retry, ${s.delivery.dead} given up\n`,
    );
    return 0;
  } finally {
    await runtime.close();
  }
}

/** Reads a TLS-RPT report e-mail from standard input (an MTA alias or pipe) and stores the report. */
async function runIngestEmail(args: string[], io: CliIo): Promise<number> {
  parseArgs(args, {});
  const [{ loadAppConfig }, { openRuntime }, { ingestEmail }] = await Promise.all([
    import('./config.js'),
    import('./runtime.js'),
    import('./tlsrpt/intake.js'),
  ]);
  const config = loadAppConfig(io.env, 'ingest');
  const raw = await (io.stdin ?? readStdin)(MAX_EMAIL_BYTES);
  if (raw === null) throw new UsageError(`the message is larger than ${MAX_EMAIL_BYTES} bytes`);
  const runtime = await openRuntime(config, null, {
    info: () => {},
    warn: () => {},
    error: (m) => io.stderr(`${m}\n`),
  });
  try {
    const result = await ingestEmail(raw, { ...runtime.intake, onStored: () => {} });
    if (result.status >= 400) {
      io.stderr(`mtasts: ${result.message}\n`);
      // A refusal for now (rate limit, a full disk, the reader busy) is EX_TEMPFAIL, so the mail server retries.
      return TEMPORARY.has(result.status) ? 75 : 2;
    }
    io.stdout(`${result.message}\n`);
    return 0;
  } finally {
    await runtime.close();
  }
}

const MAX_EMAIL_BYTES = 20 * 1024 * 1024;

/** Intake answers that mean "not now": a mail server that gets exit 75 keeps the message and tries again. */
const TEMPORARY = new Set([429, 503, 507]);

/** One pass over the TLS-RPT mailbox (MTASTS_TLSRPT_IMAP_URL): new report e-mails stored, then moved out. */
async function runIngestImap(args: string[], io: CliIo): Promise<number> {
  const { positional, flags } = parseArgs(args, { once: false });
  if (positional.length > 0 || !flags.has('once'))
    throw new UsageError(
      'run "mtasts ingest-imap --once" (the app itself reads the mailbox as reports arrive)',
    );
  const [{ loadAppConfig, ConfigError }, { openRuntime }, { ingestEmail }, imap] = await Promise.all([
    import('./config.js'),
    import('./runtime.js'),
    import('./tlsrpt/intake.js'),
    import('./tlsrpt/imap.js'),
  ]);
  const config = loadAppConfig(io.env, 'ingest');
  const settings = config.tlsrptImap;
  if (!settings)
    throw new ConfigError(
      'MTASTS_TLSRPT_IMAP_URL is not set: name the mailbox, e.g. imaps://user@imap.example.com/INBOX',
    );
  const logger = {
    info: (m: string) => io.stderr(`${m}\n`),
    warn: (m: string) => io.stderr(`warning: ${m}\n`),
    error: (m: string) => io.stderr(`error: ${m}\n`),
  };
  const runtime = await openRuntime(config, null, logger);
  // One intake for the whole pass (its rate limits and disk check span the messages); alerts wait for the app.
  const intake = { ...runtime.intake, onStored: () => {} };
  try {
    const result = await imap.readOnce({
      settings,
      db: runtime.db,
      ingest: (raw) => ingestEmail(raw, intake),
      now: runtime.intake.now,
      logger,
    });
    if (result.kind === 'busy') {
      io.stderr(
        'mtasts: another process (the app, or another ingest-imap) is reading the mailbox; nothing was done\n',
      );
      return 75;
    }
    if (result.summary)
      io.stdout(`ingest-imap: ${settings.account}/${settings.folder}: ${imap.passLine(result.summary)}\n`);
    if (result.kind === 'failed') {
      io.stderr(`mtasts: ${result.error}\n`);
      return 1;
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

/** `mtasts watch …`: the watch list in the database at DATABASE_PATH, for `npm start` without a Slack app. */
async function runWatch(args: string[], io: CliIo): Promise<number> {
  const [{ loadAppConfig }, { openTarget }, { SubscriptionStore }, { watchCommand }, { parseDuration }] =
    await Promise.all([
      import('./config.js'),
      import('./store/db.js'),
      import('./store/subscriptions.js'),
      import('./webhooks/watch-command.js'),
      import('./slack/commands/mute.js'),
    ]);
  const config = loadAppConfig(io.env, 'ingest');
  const db = await openTarget(config);
  try {
    return await watchCommand(args, {
      subscriptions: new SubscriptionStore(db),
      webhooks: config.webhooks.map((w) => w.name),
      maxDomains: config.maxDomainsPerTeam,
      now: new Date(),
      parseDuration,
      stdout: io.stdout,
      stderr: io.stderr,
    });
  } finally {
    await db.close();
  }
}

async function readStdin(limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function processIo(): CliIo {
  return {
    env: processEnv(),
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  };
}
