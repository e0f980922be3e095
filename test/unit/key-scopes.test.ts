/**
 * Scoped data keys (src/codec/keys.ts): a runner holds only its own and its pool's keys, so a
 * payload sent to another pool or runner is unreadable to it; control workers read everything.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EncryptionCodec,
  KEY_SCOPE_METADATA,
  KeyRing,
  createKeyFile,
  loadKeyRing,
  newDataKey,
  payloadConverter,
  readKeyFile,
  scopedValue,
} from '../../src/codec';
import { keyScopeOfTaskQueue, runnerKeyScopes } from '../../src/ids';

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

describe('key scopes', () => {
  it('maps task queues to scopes: pools and runners scoped, control queues not', () => {
    expect(keyScopeOfTaskQueue('pool/linux')).toBe('pool/linux');
    expect(keyScopeOfTaskQueue('pool/linux/docker')).toBe('pool/linux');
    expect(keyScopeOfTaskQueue('runner/r1')).toBe('runner/r1');
    expect(keyScopeOfTaskQueue('runner/r1/reserve/docker')).toBe('runner/r1');
    expect(keyScopeOfTaskQueue('runfleet-control')).toBeNull();
    expect(keyScopeOfTaskQueue('fleet')).toBeNull();
  });

  it('a scoped value converts as its value, with the scope in its metadata', () => {
    const p = payloadConverter.toPayload(scopedValue('runner/r1', { task: 'build' }));
    expect(text(p.metadata?.[KEY_SCOPE_METADATA])).toBe('runner/r1');
    expect(payloadConverter.fromPayload(p)).toEqual({ task: 'build' });
  });

  it("a runner decodes its own scopes' payloads and nothing else; control decodes all", async () => {
    const control = new KeyRing([newDataKey()]);
    const controlCodec = new EncryptionCodec(control);
    const runnerA = new EncryptionCodec(new KeyRing(control.keysFor(runnerKeyScopes('a', 'pool-a'))));
    const runnerB = new EncryptionCodec(new KeyRing(control.keysFor(runnerKeyScopes('b', 'pool-b'))));

    const toA = await controlCodec.encode([payloadConverter.toPayload(scopedValue('runner/a', { secret: 'for-a' }))]);
    const toPoolA = await controlCodec.encode([payloadConverter.toPayload(scopedValue('pool/pool-a', { want: 1 }))]);
    const controlOnly = await controlCodec.encode([payloadConverter.toPayload({ spec: 'control only' })]);

    expect(payloadConverter.fromPayload((await runnerA.decode(toA))[0]!)).toEqual({ secret: 'for-a' });
    expect(payloadConverter.fromPayload((await runnerA.decode(toPoolA))[0]!)).toEqual({ want: 1 });
    // Runner b of another pool: no key for a's payloads, nor for the control key's.
    await expect(runnerB.decode(toA)).rejects.toThrow(/has no data key .*\+runner\/a/);
    await expect(runnerB.decode(toPoolA)).rejects.toThrow(/has no data key .*\+pool\/pool-a/);
    await expect(runnerA.decode(controlOnly)).rejects.toThrow(/has no data key/);

    // What a runner sends back (its own key) the control side reads by deriving.
    const fromA = await runnerA.encode([payloadConverter.toPayload({ exitCode: 0 })]);
    expect(payloadConverter.fromPayload((await controlCodec.decode(fromA))[0]!)).toEqual({ exitCode: 0 });
  });

  it('re-keying a scope: new payloads use the explicit key; a runner with the old keys reads none of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-keys-'));
    const file = join(dir, 'runfleet.keys');
    createKeyFile(file);
    const before = new KeyRing(readKeyFile(file));
    const oldRunner = new EncryptionCodec(new KeyRing(before.keysFor(runnerKeyScopes('r', 'p'))));
    const rotated = createKeyFile(file, { rotate: true, scope: 'runner/r' });
    expect(rotated.id).toMatch(/^k-\d{8}-[0-9a-f]{8}\+runner\/r$/);
    expect(JSON.parse(readFileSync(file, 'utf8')).scoped).toHaveLength(1);
    const after = new KeyRing(readKeyFile(file));
    expect(after.currentFor('runner/r')?.id).toBe(rotated.id);
    const sent = await new EncryptionCodec(after).encode([payloadConverter.toPayload(scopedValue('runner/r', 1))]);
    await expect(oldRunner.decode(sent)).rejects.toThrow(/has no data key/);
    // The new runner of that name receives the new key first.
    expect(after.keysFor(runnerKeyScopes('r', 'p'))[0]?.id).toBe(rotated.id);
    expect(() => createKeyFile(file, { rotate: true, scope: 'elsewhere/x' })).toThrow(/invalid key scope/);
  });

  it('a ring that follows its key file takes a re-key within seconds, without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-keys-'));
    const file = join(dir, 'runfleet.keys');
    createKeyFile(file);
    const ring = loadKeyRing({ encryption: { keyFile: file } });
    const before = ring.currentFor('runner/r')?.id;
    const rotated = createKeyFile(file, { rotate: true, scope: 'runner/r' });
    await new Promise((r) => setTimeout(r, 2_200));
    expect(ring.currentFor('runner/r')?.id).toBe(rotated.id);
    expect(ring.currentFor('runner/r')?.id).not.toBe(before);
  });

  it("a runner with keys refuses a payload in clear (a keyless namespace client's forged task or delete session)", async () => {
    const control = new KeyRing([newDataKey()]);
    const runner = new EncryptionCodec(new KeyRing(control.keysFor(runnerKeyScopes('r', 'p'))), {
      refusePlaintext: true,
    });
    const forged = payloadConverter.toPayload({
      generation: 9,
      enabled: false,
      delete: { by: 'mallory', reason: 'x' },
    });
    await expect(runner.decode([forged])).rejects.toThrow(/refused a payload in clear \(json\/plain\)/);
    // What its control worker sends, encrypted with its key, passes; a runner before registration
    // (no keys yet) reads its grant in clear.
    const real = await new EncryptionCodec(control).encode([payloadConverter.toPayload(scopedValue('runner/r', 1))]);
    expect(payloadConverter.fromPayload((await runner.decode(real))[0]!)).toBe(1);
    const fresh = new EncryptionCodec(new KeyRing(), { refusePlaintext: true });
    expect(await fresh.decode([forged])).toEqual([forged]);
  });

  it('a runner missing a key asks its refresher once, then decodes; without one it fails naming the key', async () => {
    const control = new KeyRing([newDataKey()]);
    const before = control.keysFor(runnerKeyScopes('r', 'p'));
    const ring = new KeyRing(before);
    // The control key rotates: what is sent to runner r now uses a key derived from the new one.
    const rotated = new KeyRing([newDataKey(), ...control.ids().map((id) => control.get(id)!)]);
    const sent = await new EncryptionCodec(rotated).encode([payloadConverter.toPayload(scopedValue('runner/r', 'hi'))]);
    await expect(new EncryptionCodec(ring).decode(sent)).rejects.toThrow(/has no data key/);
    let asked = 0;
    ring.setRefresher(async () => {
      asked++;
      ring.set(rotated.keysFor(runnerKeyScopes('r', 'p')));
    });
    const codec = new EncryptionCodec(ring, { refusePlaintext: true });
    expect(payloadConverter.fromPayload((await codec.decode(sent))[0]!)).toBe('hi');
    expect(payloadConverter.fromPayload((await codec.decode(sent))[0]!)).toBe('hi');
    expect(asked).toBe(1);
  });
});
