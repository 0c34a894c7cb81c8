import { parseDomain } from './core/domain.js';
import type { PolicyMode } from './core/policy.js';
import {
  maxAgeRangeMessage,
  RecordsInputError,
  type RecordsRequest,
  validateRequest,
} from './generate/records.js';

/** Argument parsing shared by the CLI and the Slack command: the same words mean the same in both. */

export class UsageError extends Error {}

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
  if (positional.length === 0) throw new UsageError('no domain given: name one domain, e.g. example.com');
  if (positional.length > 1) {
    throw new UsageError(`"${positional.join(' ')}" is not a domain: give one domain, e.g. example.com`);
  }
  const parsed = parseDomain(positional[0] ?? '');
  if (!parsed.ok) throw new UsageError(parsed.error);
  return parsed.domain;
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
  if (maxAgeText !== undefined && !/^\d+$/.test(maxAgeText)) {
    throw new RecordsInputError(`--max-age must be a whole number of seconds, not "${maxAgeText}"`);
  }
  if (maxAgeText !== undefined && !/^0*\d{1,10}$/.test(maxAgeText)) {
    throw new RecordsInputError(maxAgeRangeMessage(maxAgeText));
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
