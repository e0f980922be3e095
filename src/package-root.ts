/** Where Runfleet itself is: the checkout or the installed package. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The folder holding `bin/runfleet`, looked for upwards from `from` (a module's `__dirname`, in
 * the sources or compiled into `dist/`).
 */
export function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'bin', 'runfleet'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..', '..');
  }
}
