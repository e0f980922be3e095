/**
 * Payload encryption end to end, against the suite's dev server: a run's spec (a secret in a step
 * script and in its env) is stored encrypted, the run still succeeds on a runner holding the same
 * keys, the codec server shows the history in clear to `temporal workflow show --codec-endpoint`,
 * and a client without the key fails with the clear error.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import { KeyRing, createKeyFile, readKeyFile } from '../../src/codec';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import { startHarness, task, type Harness } from '../helpers/harness';
import { killAll, projectRoot, startRunfleet } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const run = promisify(execFile);

const SECRET_STEP = `step-secret-${randomBytes(6).toString('hex')}`;
const SECRET_ENV = `env-secret-${randomBytes(6).toString('hex')}`;

/** True if `text` holds `secret` in clear or base64 (at any of the three byte alignments). */
function mentions(text: string, secret: string): boolean {
  if (text.includes(secret)) return true;
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), Buffer.from(secret)]).toString('base64');
    // Drop the characters that also encode the bytes around the secret.
    if (text.includes(b64.slice(Math.ceil((pad * 4) / 3), -4))) return true;
  }
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let h: Harness;
let keyFile: string;
let temporal: string;
const dir = mkdtempSync(join(tmpdir(), 'runfleet-enc-'));

beforeAll(async () => {
  keyFile = join(dir, 'keys', 'runfleet.keys');
  createKeyFile(keyFile);
  temporal = await ensureTemporalBinary({ projectRoot });
  h = await startHarness({ keys: new KeyRing(readKeyFile(keyFile)), runners: [{ name: uniqueName('enc-r') }] });
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

describe('payload encryption', () => {
  it('stores runs encrypted, runs them, and shows them only through the codec server', async () => {
    const rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
    const submitted = await rf.submitRun({
      name: 'secret',
      group: '/test/encryption',
      env: { RUN_TOKEN: SECRET_ENV },
      tasks: [task(h, 'build', [`echo ${SECRET_STEP} "$RUN_TOKEN"`])],
    });
    const final = await rf.waitRun(submitted.workflowId);
    expect(final.result).toBe('success');
    // The runner decrypted the spec: the task's log has both secrets.
    const log = await rf.readTaskLog(submitted.workflowId, 'build');
    expect(log.data).toContain(`${SECRET_STEP} ${SECRET_ENV}`);

    const show = (extra: string[] = []) =>
      run(
        temporal,
        [
          'workflow',
          'show',
          '--workflow-id',
          submitted.workflowId,
          '--address',
          h.address,
          '--namespace',
          'default',
          '--output',
          'json',
          ...extra,
        ],
        { maxBuffer: 64 * 1024 * 1024 },
      );
    const raw = (await show()).stdout;
    expect(raw).toContain('YmluYXJ5L2VuY3J5cHRlZA=='); // base64 of binary/encrypted: payloads are there, encrypted
    expect(mentions(raw, SECRET_STEP)).toBe(false);
    expect(mentions(raw, SECRET_ENV)).toBe(false);

    const port = await freePort();
    const codecToken = 'encryption-test-codec-token-0123456789';
    const server = startRunfleet(['codec-server', '--port', String(port)], {
      env: { RUNFLEET_KEY_FILE: keyFile, RUNFLEET_CODEC_TOKEN: codecToken },
      logFile: join(dir, 'codec-server.log'),
    });
    const started = () => server.output().includes('codec server at');
    await until('the codec server to start (or exit)', () => started() || server.child.exitCode !== null, {
      timeoutMs: 60_000,
      detail: () => server.output(),
    });
    if (!started()) throw new Error(`the codec server did not start:\n${server.output()}`);
    const decoded = (
      await show(['--codec-endpoint', `http://127.0.0.1:${port}`, '--codec-auth', `Bearer ${codecToken}`])
    ).stdout;
    expect(mentions(decoded, SECRET_STEP)).toBe(true);
    expect(mentions(decoded, SECRET_ENV)).toBe(true);
    server.kill();
    await server.exited;
  });

  it('tells a client without the key which key it lacks', async () => {
    const rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
    const submitted = await rf.submitRun({
      name: 'no-key',
      group: '/test/encryption',
      tasks: [task(h, 'one', ['true'])],
    });
    await rf.waitRun(submitted.workflowId);
    const keyless = await RunfleetClient.connect({
      address: h.address,
      namespace: 'default',
      controlTaskQueue: h.controlQueue,
    });
    try {
      const id = readKeyFile(keyFile)[0]!.id;
      await expect(keyless.getRun(submitted.workflowId)).rejects.toThrow(
        `this process has no data key ${id}; is the runner registered / is encryption.keyFile set?`,
      );
    } finally {
      await keyless.close();
    }
  });
});
