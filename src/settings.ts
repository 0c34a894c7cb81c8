import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';

/**
 * The settings a one-off check or records command needs (the engine's and the Domain Connect key's), as plain parse
 * functions: `mtasts check` reads them without loading zod, node-cron or the app's settings, which cost more than the
 * check's own process start. config.ts wraps these same declarations into its schema for the app, so each variable is
 * still declared once (see config.ts for how settings are read and reported). The environment is handed in: only
 * config.ts and env.ts touch process.env.
 */

export class ConfigError extends Error {}

type Env = NodeJS.ProcessEnv;

/** A setting's value from its variable (undefined when unset), or the reason it is refused. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };
export type Parse<T> = (raw: string | undefined) => Parsed<T>;

/** One setting: its environment variable and how its text becomes a value. */
export interface PlainSetting<T> {
  variable: string;
  parse: Parse<T>;
}

export type PlainShape = Record<string, PlainSetting<unknown>>;
export type PlainOutput<S extends PlainShape> = {
  [K in keyof S]: S[K] extends PlainSetting<infer T> ? T : never;
};

export const plain = <T>(variable: string, parse: Parse<T>): PlainSetting<T> => ({ variable, parse });

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const refuse = (message: string): Parsed<never> => ({ ok: false, message });

export const unset = (v: string | undefined): v is undefined => v === undefined || v.trim() === '';

/** A whole number in [min, max]; `fallback` when unset. */
export const intParse =
  (min: number, max: number, fallback: number): Parse<number> =>
  (v) => {
    if (unset(v)) return ok(fallback);
    if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max)
      return refuse(`must be a whole number from ${min} to ${max}, got "${v}"`);
    return ok(Number(v));
  };

/** 1/true/yes/on or 0/false/no/off; `fallback` when unset. */
export const flagParse =
  (fallback: boolean): Parse<boolean> =>
  (v) => {
    if (unset(v)) return ok(fallback);
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return ok(true);
    if (['0', 'false', 'no', 'off'].includes(s)) return ok(false);
    return refuse(`must be 1/on or 0/off, got "${v}"`);
  };

const dnsServer = (value: string): string | null => {
  const v = value.trim();
  if (isIP(v)) return v;
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(v);
  if (v4?.[1] && isIP(v4[1]) && Number(v4[2]) > 0 && Number(v4[2]) < 65536) return v;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(v);
  if (v6?.[1] && isIP(v6[1]) === 6 && Number(v6[2]) > 0 && Number(v6[2]) < 65536) return v;
  return null;
};

/** Comma-separated ip or ip:port ([ip]:port for IPv6); undefined (the system's resolvers) when unset. */
const dnsServersParse: Parse<string[] | undefined> = (v) => {
  if (unset(v)) return ok(undefined);
  const servers = v.split(',').map((s) => s.trim());
  const bad = servers.find((s) => dnsServer(s) === null);
  if (bad !== undefined) return refuse(`"${bad}" is not an ip or ip:port (IPv6 as [ip]:port)`);
  return ok(servers);
};

function defaultEhloName(): string {
  const h = hostname();
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(h) ? h : 'mtasts-bot.invalid';
}

const ehloNameParse: Parse<string> = (v) => {
  if (unset(v)) return ok(defaultEhloName());
  return /^[A-Za-z0-9.-]{1,253}$/.test(v) ? ok(v) : refuse(`must be a host name, got "${v}"`);
};

/** The check engine's settings. */
export const engineSettings = {
  dnsServers: plain('MTASTS_DNS_SERVERS', dnsServersParse),
  allowPrivateNetworks: plain('MTASTS_ALLOW_PRIVATE_NETWORKS', flagParse(false)),
  timeoutMs: plain('MTASTS_TIMEOUT_MS', intParse(100, 120000, 10000)),
  certWarnDays: plain('MTASTS_CERT_WARN_DAYS', intParse(1, 365, 14)),
  smtpProbe: plain('MTASTS_SMTP_PROBE', flagParse(true)),
  /** MX hosts probed per check (the most preferred), and addresses probed per MX host. */
  maxMxHosts: plain('MTASTS_MAX_MX_HOSTS', intParse(1, 100, 10)),
  maxAddressesPerMx: plain('MTASTS_MAX_ADDRESSES_PER_MX', intParse(1, 64, 8)),
  ehloName: plain('MTASTS_EHLO_NAME', ehloNameParse),
};

export type EngineConfig = PlainOutput<typeof engineSettings>;

const pemFileParse: Parse<string | null> = (v) => {
  if (unset(v)) return ok(null);
  try {
    const pem = readFileSync(v, 'utf8');
    createPrivateKey(pem);
    return ok(pem);
  } catch (err) {
    return refuse(`cannot be read as a PEM private key (${(err as Error).message})`);
  }
};

const keyHostParse: Parse<string> = (v) => {
  if (unset(v)) return ok('_dck1');
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(v))
    return refuse(`must be a host name such as _dck1, got "${v}"`);
  return ok(v);
};

/** The Domain Connect signing key (a PEM file) and the host name its public key is published under. */
export const domainConnectSettings = {
  privateKeyPem: plain('MTASTS_DC_PRIVATE_KEY_FILE', pemFileParse),
  keyHost: plain('MTASTS_DC_KEY_HOST', keyHostParse),
};

/** Reads every setting of `shape`; throws one ConfigError with a line for each bad one (all of them). */
export function readPlain<S extends PlainShape>(shape: S, env: Env): PlainOutput<S> {
  const lines: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [field, { variable, parse }] of Object.entries(shape)) {
    const read = parse(env[variable]);
    if (read.ok) out[field] = read.value;
    else lines.push(`${variable} ${read.message}`);
  }
  if (lines.length > 0) throw new ConfigError(lines.join('\n'));
  return out as PlainOutput<S>;
}

export function loadEngineConfig(env: Env): EngineConfig {
  return readPlain(engineSettings, env);
}

/** The Domain Connect signing key, or null when this installation has none. */
export function loadDomainConnectKey(env: Env): { privateKeyPem: string; keyHost: string } | null {
  const { privateKeyPem, keyHost } = readPlain(domainConnectSettings, env);
  return privateKeyPem ? { privateKeyPem, keyHost } : null;
}
