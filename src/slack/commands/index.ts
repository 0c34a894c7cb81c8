import { check } from './check.js';
import { help } from './help.js';
import { host } from './host.js';
import { list } from './list.js';
import { mute, unmute } from './mute.js';
import { records } from './records.js';
import { reports } from './reports.js';
import { setup } from './setup.js';
import type { Subcommand } from './subcommand.js';
import { unwatch } from './unwatch.js';
import { watch } from './watch.js';

/**
 * The slash subcommands, in the order help lists them. This is the one place: a new subcommand is a file here that
 * exports a Subcommand ({usage, does, args, run}) and its line below; help, App Home and (through a test) the
 * manifest's usage_hint follow.
 */
export const SUBCOMMANDS: readonly Subcommand[] = [
  check,
  watch,
  unwatch,
  list,
  mute,
  unmute,
  records,
  setup,
  host,
  reports,
  help,
];
