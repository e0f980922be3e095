/**
 * Re-keying after a purge (issue 10: "purging a runner does not re-key"): `runfleet runner purge`
 * re-keys the runner's scope in the key file, so a machine that kept the purged runner's sealed
 * keys reads nothing sent to a later runner of that name; control workers following the file use
 * the new key within seconds.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec, createKeyFile, loadKeyRing, payloadConverter, scopedValue } from '../../src/codec';
import { runnerKeyScopes } from '../../src/ids';
import { startHarness, type Harness } from '../helpers/harness';
import { startRunfleet } from '../helpers/processes';
import { testRunnerAdmin } from '../helpers/harness';
import { uniqueName } from '../helpers/temporal';
import { KeyRing } from '../../src/codec/keys';

const dir = mkdtempSync(join(tmpdir(), 'rf-rekey-'));
const keyFile = join(dir, 'runfleet.keys');
createKeyFile(keyFile);
// The control side follows the key file, as `runfleet worker` does.
const control = loadKeyRing({ encryption: { keyFile } });

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ keys: control });
});
afterAll(async () => {
  await h?.stop();
});

describe('runner purge', () => {
  it("re-keys the runner's scope: the purged machine's keys read nothing sent to its name afterwards", async () => {
    const name = uniqueName('purged');
    const pool = uniqueName('pool');
    await testRunnerAdmin(h.client, h.controlQueue, h.address).create({ name, pool, by: 'test' });
    // What the runner's machine was sealed when it joined: its own and its pool's keys.
    const kept = new KeyRing(control.keysFor(runnerKeyScopes(name, pool)));

    const proc = startRunfleet(['runner', 'purge', name, '--yes', '--reason', 'machine compromised'], {
      env: {
        TEMPORAL_ADDRESS: h.address,
        RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue,
        RUNFLEET_KEY_FILE: keyFile,
      },
      logFile: join(dir, `purge-${name}.log`),
    });
    expect(await proc.exited).toBe(0);
    console.log(`runner purge: ${proc.output().trim()}`);
    expect(proc.output()).toContain(`re-keyed runner/${name}`);
    const scoped = (JSON.parse(readFileSync(keyFile, 'utf8')) as { scoped?: { id: string }[] }).scoped ?? [];
    expect(scoped.map((k) => k.id).some((id) => id.endsWith(`+runner/${name}`))).toBe(true);

    // Within the follow interval the control side encrypts for that name with the new key.
    await new Promise((r) => setTimeout(r, 2_200));
    const sent = await new EncryptionCodec(control).encode([
      payloadConverter.toPayload(scopedValue(`runner/${name}`, { task: 'for the next runner of this name' })),
    ]);
    const tried = await new EncryptionCodec(kept).decode(sent).then(
      () => 'decoded',
      (err: Error) => err.message,
    );
    console.log(`the purged machine decoding what is sent to runner/${name} now: ${tried}`);
    expect(tried).toMatch(/has no data key/);
  });
});
