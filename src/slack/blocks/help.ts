import { usageText } from '../commands/help.js';
import { SUBCOMMANDS } from '../commands/index.js';

/**
 * The slash subcommands' usage, one line each, as `/mtasts help` shows it (App Home shows it too). It comes from the
 * table in commands/index.ts, like the manifest's usage_hint: nothing here is written twice.
 */
export const USAGE = usageText(SUBCOMMANDS);

// Rendered beside the subcommands that answer with them (which cannot import this file: it imports their table).
export { listMessage } from '../commands/list.js';
export { watchLimitText } from '../commands/watch.js';
