import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RespondArguments } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildSlackApp, openRuntime, type Runtime } from '../../src/runtime.js';
import type { SlackApp } from '../../src/slack/app.js';
import { LIMITS } from '../../src/slack/blocks/common.js';
// The renderer's module first: if it and the table imported each other, USAGE would be read before it exists.
import { USAGE } from '../../src/slack/blocks/help.js';
import { helpMessage, usageHint, usageText } from '../../src/slack/commands/help.js';
import { SUBCOMMANDS } from '../../src/slack/commands/index.js';
import { mtastsCommand } from '../../src/slack/commands/mtasts.js';
import { domainAnd, nameOf, type Subcommand } from '../../src/slack/commands/subcommand.js';
import { DB_BUSY_TEXT, type SlackContext } from '../../src/slack/context.js';
import { MALFORMED } from '../../src/slack/input.js';
import { CheckLimiter } from '../../src/slack/limiter.js';
import { DatabaseBusyError } from '../../src/store/busy.js';
import { testConfig } from '../support/config.js';
import { FakeSlack, sendSigned, slashCommand } from '../support/fake-slack.js';

const SECRET = 'commands-test-secret';
const NOW = new Date('2026-11-29T12:00:00.000Z');
const names = SUBCOMMANDS.map(nameOf);

describe('the table of subcommands', () => {
  test('every entry is named by the first word of its usage, once, in lower case', () => {
    expect(names).toEqual([
      'check',
      'watch',
      'unwatch',
      'list',
      'mute',
      'unmute',
      'records',
      'setup',
      'host',
      'reports',
      'help',
    ]);
    for (const s of SUBCOMMANDS) {
      expect(nameOf(s)).toMatch(/^[a-z]+$/);
      expect(s.does.length).toBeGreaterThan(0);
    }
  });

  test('help (and App Home) list every entry, one line each, in the order of the table', () => {
    const lines = USAGE.split('\n');
    expect(lines).toHaveLength(SUBCOMMANDS.length);
    SUBCOMMANDS.forEach((s, i) => {
      expect(lines[i]).toBe(`\`/mtasts ${s.usage}\` — ${s.does}`);
    });
    const help = helpMessage(SUBCOMMANDS);
    const text = String(help.blocks[0]?.text?.text);
    expect(text.length).toBeLessThanOrEqual(LIMITS.sectionText);
    expect(text.endsWith(USAGE)).toBe(true); // not cut by the section limit
  });

  test("manifest.yml's usage_hint is the one the table makes", () => {
    const manifest = parseYaml(readFileSync(new URL('../../manifest.yml', import.meta.url), 'utf8')) as {
      features: { slash_commands: { command: string; usage_hint: string }[] };
    };
    const [mtasts] = manifest.features.slash_commands;
    // If this fails, the expected line below is what manifest.yml's usage_hint must say.
    expect(mtasts?.usage_hint).toBe(usageHint(SUBCOMMANDS));
    expect(mtasts?.usage_hint.length).toBeLessThanOrEqual(1000); // the manifest schema's limit
    for (const name of names) expect(mtasts?.usage_hint).toContain(name);
  });

  test.each([
    [['a example.com', 'b example.com [x]', 'c', 'd'], 'a | b example.com · c · d'],
    [['a example.com'], 'a example.com'],
    [['c', 'd'], 'c · d'],
    [['c', 'a example.com', 'd'], 'a example.com · c · d'],
    [[], ''],
  ])('the usage_hint of %j is %j', (usages, hint) => {
    expect(usageHint(usages.map((usage) => ({ usage, does: '' })))).toBe(hint);
  });

  test('usage text of a table of two', () => {
    expect(
      usageText([
        { usage: 'a example.com', does: 'does a' },
        { usage: 'b', does: 'does b' },
      ]),
    ).toBe('`/mtasts a example.com` — does a\n`/mtasts b` — does b');
  });
});

let slack: FakeSlack;
let runtime: Runtime;
let app: SlackApp;
let url = '';
let responses = 0;

beforeAll(async () => {
  slack = await FakeSlack.start();
  runtime = await openRuntime(
    testConfig({
      SLACK_SIGNING_SECRET: SECRET,
      SLACK_API_URL: slack.apiUrl,
      DATABASE_PATH: join(mkdtempSync(join(tmpdir(), 'mtasts-commands-')), 'commands.sqlite'),
    }),
    null,
    { info: () => {}, warn: () => {}, error: () => {} },
    { now: () => NOW },
  );
  app = buildSlackApp(runtime);
  url = `http://127.0.0.1:${await app.start()}`;
  await runtime.subscriptions.watch('T1', 'C1', 'good.test', 'U1', 100, NOW);
});
afterAll(async () => {
  await app.stop();
  await runtime.close();
  await slack.stop();
});

/** A signed /mtasts over HTTP through the real app; its ack. */
async function ack(text: string): Promise<Record<string, unknown>> {
  const fields = slashCommand(text, { responseUrl: slack.responseUrl(`c${++responses}`) });
  const res = await sendSigned(`${url}/slack/events`, SECRET, fields);
  expect(res.status).toBe(200);
  return res.json();
}

describe('arguments, read by src/args.ts for every subcommand', () => {
  test.each([
    ['check good.test --json', 'unknown option "--json"', 'check example.com'],
    ['watch -rf', '"-rf" is not an option or a domain', 'watch example.com'],
    ['unwatch', 'no domain given', 'unwatch example.com'],
    ['setup a.test b.test', '"a.test b.test" is not a domain', 'setup example.com'],
    ['mute good.test 2h now', 'too many words', 'mute example.com [duration]'],
    [
      'mute good.test forever',
      'give the duration as minutes, hours or days, at most 30d',
      'mute example.com',
    ],
    ['mute good.test 31d', 'at most 30d', 'mute example.com'],
    ['mute --for 2h good.test', 'unknown option "--for"', 'mute example.com'],
    ['unmute good.test 2h', '"good.test 2h" is not a domain', 'unmute example.com'],
    ['reports good.test 0', 'give the number of days, 1 to 365', 'reports example.com [days]'],
    ['reports good.test 366', 'give the number of days, 1 to 365', 'reports example.com [days]'],
    ['reports 10.0.0.1', 'is not a domain', 'reports example.com [days]'],
    [
      'records good.test --mode strict',
      '--mode must be testing, enforce or none',
      'records example.com [--mode',
    ],
    ['records good.test --mx', '--mx needs a value', 'records example.com'],
    ['records --mode enforce', 'no domain given', 'records example.com'],
  ])('%s: "%s", with the usage', async (text, why, usage) => {
    const json = await ack(text);
    expect(json.response_type).toBe('ephemeral');
    expect(String(json.text)).toMatch(/^:warning: /);
    expect(String(json.text)).toContain(why);
    expect(String(json.text)).toContain(` — \`/mtasts ${usage}`);
  });

  test('what the user typed comes back escaped', async () => {
    const text = String((await ack('check <!channel>')).text);
    expect(text).toContain('&lt;!channel&gt;');
    expect(text).not.toContain('<!channel>');
  });

  test('mute reads its duration (24 hours unless given) and its domain in any case', async () => {
    const at = (ms: number) => new Date(NOW.getTime() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect((await ack('mute good.test 90m')).text).toBe(
      `<@U1> muted alerts about good.test in this channel until ${at(90 * 60_000)}.`,
    );
    expect((await ack('MUTE Good.Test')).text).toBe(
      `<@U1> muted alerts about good.test in this channel until ${at(86_400_000)}.`,
    );
    expect((await ack('mute good.test 30d')).text).toContain(`until ${at(30 * 86_400_000)}.`);
    expect((await ack('unmute -- good.test')).text).toBe(
      '<@U1> unmuted alerts about good.test in this channel.',
    );
    expect((await runtime.subscriptions.listChannel('T1', 'C1'))[0]?.mutedUntil).toBeNull();
  });

  test('reports reads its days: 7 unless given, up to 365', async () => {
    expect(JSON.stringify(await ack('reports good.test'))).toContain('7 day');
    expect(JSON.stringify(await ack('reports good.test 365'))).toContain('365 day');
    expect((await ack('reports other.test 3')).text).toContain('Watch other.test in this channel first');
  });

  test('list and help take no arguments and ignore extra words, as before', async () => {
    expect(JSON.stringify(await ack('list everything'))).toContain('good.test');
    expect(JSON.stringify(await ack('help me'))).toContain('/mtasts reports example.com [days]');
  });

  test('an unknown subcommand gets the help, saying so', async () => {
    const json = JSON.stringify(await ack('frobnicate example.com'));
    expect(json).toContain('Unknown subcommand \\"frobnicate\\".');
    for (const name of names) expect(json).toContain(`/mtasts ${name}`);
  });
});

/** A direct call of the listener, as Bolt makes it: what it acknowledged, answered later and logged. */
async function direct(subcommands: readonly Subcommand[], command: unknown) {
  const seen = { acks: [] as (string | RespondArguments | undefined)[], responds: [] as RespondArguments[] };
  const logs: string[] = [];
  const ctx: SlackContext = {
    engine: runtime.engine,
    subscriptions: runtime.subscriptions,
    checks: runtime.checks,
    tlsrpt: runtime.tlsrpt,
    installations: null,
    maxDomainsPerTeam: 100,
    now: () => NOW,
    limiter: new CheckLimiter(runtime.config.checkLimits),
  };
  const args = {
    command,
    ack: async (answer?: string | RespondArguments) => {
      // Bolt refuses a second ack; so does this.
      if (seen.acks.length > 0) throw new Error('already acknowledged');
      seen.acks.push(answer);
    },
    respond: async (answer: RespondArguments) => {
      seen.responds.push(answer);
    },
    logger: { warn: (m: string) => logs.push(m), error: (m: string) => logs.push(m) },
  };
  await mtastsCommand(ctx, subcommands)(args as unknown as Parameters<ReturnType<typeof mtastsCommand>>[0]);
  return { ...seen, logs };
}

const fields = (text: string) => ({
  team_id: 'T1',
  channel_id: 'C1',
  user_id: 'U1',
  text,
  trigger_id: '1.2',
});

/** A subcommand added to the table by one entry, as a new file would add it. */
const greet: Subcommand<{ name: string; times: string | undefined }> = {
  usage: 'greet example.com [times]',
  does: 'says hello to a domain',
  args: (words) => {
    const { domain, extra } = domainAnd(words);
    return { name: domain.ascii, times: extra };
  },
  run: (c, { name, times }) => c.ack({ response_type: 'ephemeral', text: `hello ${name} ×${times ?? 1}` }),
};

describe('the dispatcher, given a table', () => {
  const table = [...SUBCOMMANDS, greet];

  test('one more entry is a subcommand: run, listed by help, in the usage_hint, its usage on bad arguments', async () => {
    expect((await direct(table, fields('greet Example.COM 3'))).acks).toEqual([
      { response_type: 'ephemeral', text: 'hello example.com ×3' },
    ]);
    const help = JSON.stringify((await direct(table, fields('help'))).acks[0]);
    expect(help).toContain('`/mtasts greet example.com [times]` — says hello to a domain');
    expect(usageHint(table)).toBe(
      'check | watch | unwatch | mute | unmute | records | setup | host | reports | greet example.com · list · help',
    );
    const bad = (await direct(table, fields('greet a b c'))).acks[0] as RespondArguments;
    expect(bad.text).toBe(':warning: too many words — `/mtasts greet example.com [times]`');
    // Without the entry, the same words are an unknown subcommand.
    const without = JSON.stringify((await direct(SUBCOMMANDS, fields('greet example.com'))).acks[0]);
    expect(without).toContain('Unknown subcommand');
    expect(without).not.toContain('greet example.com [times]');
  });

  test('a failure before the ack is the apology as the ack, logged with where it came from', async () => {
    const broken: Subcommand<undefined> = {
      usage: 'broken',
      does: 'fails',
      args: () => undefined,
      run: async () => {
        throw new Error('kaput');
      },
    };
    const r = await direct([broken], fields('broken'));
    expect(r.acks).toEqual([{ response_type: 'ephemeral', text: expect.stringMatching(/^:sweat: Sorry/) }]);
    expect(r.responds).toEqual([]);
    expect(r.logs[0]).toMatch(/^\/mtasts broken failed \(team T1, channel C1, user U1\): Error: kaput/);
  });

  test('a failure after the ack is the apology through response_url; a busy database says so', async () => {
    const late: Subcommand<undefined> = {
      usage: 'late',
      does: 'fails after acknowledging',
      args: () => undefined,
      run: async (c) => {
        await c.ack();
        throw new DatabaseBusyError(new Error('SQLITE_BUSY'));
      },
    };
    const r = await direct([late], fields('late'));
    expect(r.acks).toEqual([undefined]);
    expect(r.responds).toEqual([{ response_type: 'ephemeral', text: DB_BUSY_TEXT, replace_original: false }]);
    expect(r.logs[0]).toBe(
      '/mtasts late (team T1): the database is busy (another process holds its lock); try again in a moment',
    );
  });

  test('an error that is not about the arguments, thrown while reading them, is a failure, not a usage', async () => {
    const odd: Subcommand<undefined> = {
      usage: 'odd',
      does: 'its reader breaks',
      args: () => {
        throw new TypeError('reader bug');
      },
      run: async () => {},
    };
    const r = await direct([odd], fields('odd'));
    expect(String((r.acks[0] as RespondArguments).text)).toMatch(/^:sweat: Sorry/);
    expect(r.logs[0]).toContain('TypeError: reader bug');
  });

  test.each([
    ['null', null],
    ['text a number', { ...fields('list'), text: 7 }],
    ['no user', { team_id: 'T1', channel_id: 'C1', text: 'list' }],
  ])('a malformed payload (%s) is answered and nothing runs', async (_why, command) => {
    let ran = false;
    const spy: Subcommand<undefined> = {
      usage: 'list',
      does: 'records that it ran',
      args: () => undefined,
      run: async () => {
        ran = true;
      },
    };
    const r = await direct([spy], command);
    expect(r.acks).toEqual([{ response_type: 'ephemeral', text: MALFORMED }]);
    expect(ran).toBe(false);
  });

  test('no words at all is help', async () => {
    const r = await direct(table, fields('   '));
    expect(JSON.stringify(r.acks[0])).toContain('/mtasts greet example.com [times]');
    expect(JSON.stringify(r.acks[0])).not.toContain('Unknown subcommand');
  });
});
