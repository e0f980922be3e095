/**
 * `runfleet up --temporal ADDRESS` on a Temporal service that is already there (the suite's own,
 * standing in for a service run by someone else, issue 14): no dev server is started, Runfleet's
 * search attributes are checked, and the example run succeeds on its local runner.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startRunfleet } from '../helpers/processes';
import { temporalAddress, uniqueName } from '../helpers/temporal';

describe('runfleet up --temporal', () => {
  it('uses the service given instead of a dev server; the example run succeeds', async () => {
    const home = mkdtempSync(join(tmpdir(), 'runfleet-up-external-'));
    const proc = startRunfleet(
      ['up', '--temporal', temporalAddress(), '--submit', 'examples/diamond.yaml', '--exit-when-done'],
      {
        env: {
          RUNFLEET_HOME: home,
          // Keys of its own (`up` creates them); the suite's file that must never exist stays so.
          RUNFLEET_KEY_FILE: join(home, 'keys', 'runfleet.keys'),
          RUNFLEET_CONTROL_TASK_QUEUE: uniqueName('up-control'),
        },
        logFile: join(home, 'up.log'),
      },
    );
    const code = await proc.exited;
    const output = proc.output();
    console.log(
      output
        .split('\n')
        .filter((l) => /Temporal|finished|succeeded|success/.test(l))
        .join('\n'),
    );
    expect(code, output).toBe(0);
    expect(output).toContain(`using the Temporal service at ${temporalAddress()} (no dev server)`);
    expect(output).not.toContain('starting Temporal dev server');
  }, 240_000);
});
