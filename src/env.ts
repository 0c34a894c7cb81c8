/**
 * This process's environment, for the adapters that take their settings from it. Nothing here interprets it: every
 * setting is parsed and checked in config.ts. Kept apart so that a command that needs no settings (`mtasts help`)
 * does not load the settings schema.
 */
export function processEnv(): NodeJS.ProcessEnv {
  return process.env;
}
