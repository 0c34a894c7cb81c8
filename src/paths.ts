import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's root (the folder with package.json), found from this file wherever it was compiled to. */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('mtasts-bot: cannot find the project folder (package.json)');
    dir = parent;
  }
}

const ROOT = projectRoot();

/** A file shipped with the project (migrations, the Domain Connect template), by its path from the root. */
export function projectFile(path: string): string {
  return join(ROOT, path);
}
