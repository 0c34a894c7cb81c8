import { ConfigError, loadDomainConnectKey, loadEngineConfig } from './config.js';
import type { CheckDeps, CheckOptions } from './core/check.js';
import { parseDomain } from './core/domain.js';
import type { PolicyMode } from './core/policy.js';
import { createEngine } from './engine.js';
import { RecordsInputError, type RecordsRequest, validateRequest } from './generate/records.js';
import { recordsFor } from './generate/service.js';
import { renderRecordsText } from './render/records-text.js';
import { renderReportText, wrap } from './render/text.js';

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
}

const USAGE = `usage:
  mtasts check <domain> [--json]     full MTA-STS and TLS-RPT check (exit 0 pass/warn, 1 fail, 2 bad input)
  mtasts records <domain> [--mode testing|enforce|none] [--max-age N] [--mx host ...] [--rua uri ...]
                 [--id ID] [--json]  copy-ready records, policy file, web-server snippets, Domain Connect
  mtasts sweep                       one monitoring pass over every watched domain
`;

export class UsageError extends Error {}

/** Runs one command; returns the exit code. Never throws: bad input is one line on stderr and exit 2. */
export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  try {
    const [command, ...rest] = argv;
    switch (command) {
      case 'check':
        return await runCheck(rest, io);
      case 'records':
        return await runRecords(rest, io);
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
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof RecordsInputError) {
      io.stderr(`mtasts: ${err.message}\n`);
      return 2;
    }
    io.stderr(`mtasts: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 70;
  }
}

interface Parsed {
  positional: string[];
  flags: Map<string, string[]>;
}

/** Splits arguments into positionals and --flags; `known` maps each flag to whether it takes a value. */
export function parseArgs(args: string[], known: Record<string, boolean>): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      if (!(name in known)) throw new UsageError(`unknown option "--${name}"`);
      const list = flags.get(name) ?? [];
      if (known[name]) {
        const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
        if (value === undefined) throw new UsageError(`--${name} needs a value`);
        list.push(value);
      } else list.push('true');
      flags.set(name, list);
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      throw new UsageError(`"${arg}" is not an option or a domain; options start with -- (see mtasts help)`);
    }
    positional.push(arg);
  }
  return { positional, flags };
}

export function domainArgument(positional: string[]) {
  if (positional.length === 0) throw new UsageError('no domain given: mtasts check example.com');
  if (positional.length > 1) {
    throw new UsageError(`"${positional.join(' ')}" is not a domain: give one domain, e.g. example.com`);
  }
  const parsed = parseDomain(positional[0] ?? '');
  if (!parsed.ok) throw new UsageError(parsed.error);
  return parsed.domain;
}

function engineFor(io: CliIo) {
  return createEngine(loadEngineConfig(io.env), loadDomainConnectKey(io.env), {
    ...(io.engine ? { options: io.engine } : {}),
    ...(io.deps ? { deps: io.deps } : {}),
    ...(io.domainConnectPort ? { domainConnectPort: io.domainConnectPort } : {}),
  });
}

async function runCheck(args: string[], io: CliIo): Promise<number> {
  const { positional, flags } = parseArgs(args, { json: false });
  const domain = domainArgument(positional);
  const report = await engineFor(io).check(domain);
  io.stdout(flags.has('json') ? `${JSON.stringify(report, null, 2)}\n` : renderReportText(report));
  return report.status === 'fail' ? 1 : 0;
}

/** The flags of `records`, checked: shared with the Slack command. */
export function recordsRequest(args: string[]): {
  positional: string[];
  json: boolean;
  request: RecordsRequest;
} {
  const { positional, flags } = parseArgs(args, {
    json: false,
    mode: true,
    'max-age': true,
    mx: true,
    rua: true,
    id: true,
  });
  const one = (name: string) => {
    const values = flags.get(name);
    if (values && values.length > 1) throw new UsageError(`--${name} may be given once`);
    return values?.[0];
  };
  const maxAgeText = one('max-age');
  if (maxAgeText !== undefined && !/^\d{1,10}$/.test(maxAgeText)) {
    throw new RecordsInputError(`--max-age must be a whole number of seconds, not "${maxAgeText}"`);
  }
  const split = (name: string) =>
    flags.get(name)?.flatMap((v) =>
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    );
  const request: RecordsRequest = {};
  const mode = one('mode');
  if (mode !== undefined) request.mode = mode as PolicyMode;
  if (maxAgeText !== undefined) request.maxAge = Number(maxAgeText);
  const mx = split('mx');
  if (mx) request.mx = mx;
  const rua = split('rua');
  if (rua) request.rua = rua;
  const id = one('id');
  if (id !== undefined) request.id = id;
  validateRequest(request);
  return { positional, json: flags.has('json'), request };
}

async function runRecords(args: string[], io: CliIo): Promise<number> {
  const { positional, json, request } = recordsRequest(args);
  const domain = domainArgument(positional);
  const result = await recordsFor(domain, request, engineFor(io));
  if (json) {
    const { plan, bind, snippets, domainConnect } = result;
    io.stdout(`${JSON.stringify({ plan, bind, snippets, domainConnect }, null, 2)}\n`);
  } else {
    const dc = result.domainConnect;
    const lines = ['4. One-click setup (Domain Connect):', ...wrap(dc.message, 80, '   ')];
    if (dc.applyUrl) lines.push('', `   ${dc.applyUrl}`);
    io.stdout(renderRecordsText(result.plan, result.snippets, lines));
  }
  return 0;
}

function processIo(): CliIo {
  return {
    env: process.env,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  };
}
