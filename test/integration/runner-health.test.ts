/** A runner process's /livez and /readyz, against the real dev server. */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../helpers/harness';
import { killAll, registerRunner, startRunnerProcess } from '../helpers/processes';
import { temporalAddress, uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

describe('runner health endpoints', () => {
  it('answers /livez while running and /readyz once serving, and stops cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runfleet-health-'));
    const name = uniqueName('health');
    mkdirSync(join(dir, name));
    const pool = uniqueName('hp');
    const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: { slots: 4 } });
    const proc = startRunnerProcess({
      address: temporalAddress(),
      name,
      pool,
      dataDir: join(dir, name),
      token,
      slots: 4,
      healthPort: 0,
    });
    const port = await until(
      'the health port',
      async () => /health: http:\/\/127\.0\.0\.1:(\d+)\/livez/.exec(proc.output())?.[1],
      60_000,
    );
    const base = `http://127.0.0.1:${port}`;
    const live = await fetch(`${base}/livez`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ live: true });

    const ready = await until(
      'readiness',
      async () => {
        const r = await fetch(`${base}/readyz`);
        return r.status === 200 ? ((await r.json()) as { ready: boolean; reason: string }) : undefined;
      },
      60_000,
    );
    expect(ready.ready).toBe(true);
    expect(ready.reason).toContain('serving with 4 of 4 slots free');
    expect((await fetch(`${base}/nope`)).status).toBe(404);

    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    await expect(fetch(`${base}/livez`)).rejects.toThrow();
  });
});
