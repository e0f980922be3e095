/**
 * `runfleet worker --health-port`: the control worker's /livez and /readyz, for a process
 * supervisor or an orchestrator's probes (docker-compose.yml uses them).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, startRunfleet } from '../helpers/processes';
import { temporalAddress, uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

afterAll(async () => {
  await killAll();
});

describe('control worker health', () => {
  it('answers /livez, and /readyz once it polls; an unknown path is 404', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runfleet-worker-health-'));
    const worker = startRunfleet(['worker', '--health-port', '0'], {
      env: { TEMPORAL_ADDRESS: temporalAddress(), RUNFLEET_CONTROL_TASK_QUEUE: uniqueName('control-health') },
      logFile: join(dir, 'worker.log'),
    });
    const port = await until(
      'the health port',
      () => /health: http:\/\/127\.0\.0\.1:(\d+)\/livez/.exec(worker.output())?.[1],
      { timeoutMs: 60_000, detail: () => worker.output() },
    );
    const get = async (path: string) => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      return { status: r.status, body: (await r.json()) as Record<string, unknown> };
    };
    expect(await get('/livez')).toEqual({ status: 200, body: { live: true } });
    expect(await get('/readyz')).toEqual({ status: 200, body: { ready: true, reason: 'control worker running' } });
    expect((await get('/metrics')).status).toBe(404);
  }, 120_000);
});
