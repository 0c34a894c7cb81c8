import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';
import { alive, SELF } from '../../src/store/locks.js';

/** Who holds a lease or a page: this host's processes are looked up by pid; others' are trusted to their lease. */
const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];

test('a holder names its host, pid and PID namespace; one of this host and namespace is looked up by its pid', () => {
  expect(SELF).toBe(`${hostname()}:${process.pid}:${namespace}`);
  expect(alive(SELF)).toBe(true);
  expect(alive(`${hostname()}:2147483646:${namespace}`)).toBe(false); // no such process
  expect(alive(`${hostname()}:2147483646`)).toBe(false); // a holder from before namespaces were named
  // Another PID namespace on this host (a container sharing its host name): its pids are not ours to look up.
  expect(alive(`${hostname()}:2147483646:1`)).toBe(true);
  expect(alive(`another-host:2147483646:${namespace}`)).toBe(true);
});

test.runIf(process.getuid?.() === 0)(
  'a process of another user is running, not dead (kill(pid, 0) answers EPERM): its page is not taken',
  () => {
    const locks = fileURLToPath(new URL('../../src/store/locks.ts', import.meta.url));
    // As nobody, pid 1 (root's) cannot be signalled: EPERM. It runs all the same.
    const out = execFileSync(
      'runuser',
      [
        '-u',
        'nobody',
        '--',
        process.execPath,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { alive } from ${JSON.stringify(locks)}; import { hostname } from 'node:os';
         const ns = (await import('node:fs')).readlinkSync('/proc/self/ns/pid').match(/\\[(\\d+)\\]/)[1];
         process.stdout.write(String(alive(hostname() + ':1:' + ns)));`,
      ],
      { encoding: 'utf8', cwd: fileURLToPath(new URL('../..', import.meta.url)) },
    );
    expect(out).toBe('true');
  },
);
