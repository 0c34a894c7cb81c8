#!/usr/bin/env node
let cli;
try {
  cli = await import('../dist/cli.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  process.stderr.write(
    'mtasts: the CLI is not built yet: run "npm install" (or "npm run build") in the project folder\n',
  );
  process.exit(2);
}
process.exitCode = await cli.main(process.argv.slice(2));
