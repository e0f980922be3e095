import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  CompressionCodec,
  EncryptionCodec,
  KEY_DELIVERY_ENCODING,
  KeyRing,
  createDataConverter,
  createKeyFile,
  generateIdentity,
  loadKeyRing,
  newDataKey,
  openKeys,
  openSealed,
  payloadConverter,
  readKeyFile,
  sealFor,
  sealKeys,
} from '../../src/codec';
import { RunfleetError } from '../../src/errors';
import { createRegistryActivities } from '../../activities/registry';
import { createRegistrationToken, registrationProof, tokenGrant } from '../../src/registry/token';
import { generateSigningKey, signStatement } from '../../src/security/operator';

const SECRET = 'hunter2-s3cr3t-token';
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const encodingOf = (p: Payload) => text(p.metadata?.['encoding']);

/** Encodes and decodes through the same codecs, in the order the SDK runs them. */
async function roundTrip(
  codecs: { encode(p: Payload[]): Promise<Payload[]>; decode(p: Payload[]): Promise<Payload[]> }[],
  payloads: Payload[],
) {
  let encoded = payloads;
  for (const c of codecs) encoded = await c.encode(encoded);
  let decoded = encoded;
  for (const c of [...codecs].reverse()) decoded = await c.decode(decoded);
  return { encoded, decoded };
}

describe('EncryptionCodec', () => {
  const ring = new KeyRing([newDataKey()]);
  const codec = new EncryptionCodec(ring);

  it('round-trips payloads and hides their content and encoding', async () => {
    const value = { script: `echo ${SECRET}`, env: { TOKEN: SECRET } };
    const plain = payloadConverter.toPayload(value);
    const { encoded, decoded } = await roundTrip([codec], [plain]);
    expect(encodingOf(encoded[0]!)).toBe('binary/encrypted');
    expect(text(encoded[0]!.metadata?.['encryption-key-id'])).toBe(ring.current()!.id);
    expect(Buffer.from(encoded[0]!.data!).includes(SECRET)).toBe(false);
    expect(Buffer.from(encoded[0]!.data!).includes('json/plain')).toBe(false);
    expect(payloadConverter.fromPayload(decoded[0]!)).toEqual(value);
  });

  it('uses a fresh nonce for every payload', async () => {
    const p = payloadConverter.toPayload('same');
    const [a, b] = await codec.encode([p, p]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  it('compresses before it encrypts (the SDK encodes in array order)', async () => {
    const big = { log: 'x'.repeat(200_000) };
    const { encoded, decoded } = await roundTrip(createDataConverter({ keys: ring }).payloadCodecs!, [
      payloadConverter.toPayload(big),
    ]);
    expect(encodingOf(encoded[0]!)).toBe('binary/encrypted');
    // Compressed first: the ciphertext is far smaller than the 200 KB it carries.
    expect(encoded[0]!.data!.length).toBeLessThan(10_000);
    expect(payloadConverter.fromPayload(decoded[0]!)).toEqual(big);
  });

  it('names the missing key when it cannot decrypt', async () => {
    const [encoded] = await codec.encode([payloadConverter.toPayload('x')]);
    const other = new EncryptionCodec(new KeyRing());
    const err = await other.decode([encoded!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as Error).message).toBe(
      `this process has no data key ${ring.current()!.id}; is the runner registered / is encryption.keyFile set?`,
    );
  });

  it('detects tampering', async () => {
    const [encoded] = await codec.encode([payloadConverter.toPayload('x')]);
    const data = Buffer.from(encoded!.data!);
    data[data.length - 20]! ^= 1;
    await expect(codec.decode([{ ...encoded!, data }])).rejects.toThrow(/altered/);
  });

  it('passes payloads through without a current key and decodes clear payloads as they are', async () => {
    const empty = new EncryptionCodec(new KeyRing());
    const p = payloadConverter.toPayload({ a: 1 });
    expect(await empty.encode([p])).toEqual([p]);
    expect(await codec.decode([p])).toEqual([p]);
  });

  it('lets key deliveries through in clear, and reads them back as JSON', async () => {
    const grant = { kind: 'runfleet/key-delivery', name: 'r1', keys: [{ id: 'k', sealed: 'AAAA' }] };
    const p = payloadConverter.toPayload(grant);
    expect(encodingOf(p)).toBe(KEY_DELIVERY_ENCODING);
    const [encoded] = await codec.encode([p]);
    expect(encodingOf(encoded!)).toBe(KEY_DELIVERY_ENCODING);
    expect(payloadConverter.fromPayload(encoded!)).toEqual(grant);
    // Anything else with a kind is ordinary JSON.
    expect(encodingOf(payloadConverter.toPayload({ kind: 'other' }))).toBe('json/plain');
  });

  it('decodes with an older key after rotation', async () => {
    const old = newDataKey();
    const rotating = new KeyRing([old]);
    const c = new EncryptionCodec(rotating);
    const [before] = await c.encode([payloadConverter.toPayload('old')]);
    rotating.set([newDataKey(), old]);
    const [after] = await c.encode([payloadConverter.toPayload('new')]);
    expect(text(after!.metadata?.['encryption-key-id'])).not.toBe(old.id);
    const decoded = await c.decode([before!, after!]);
    expect(decoded.map((d) => payloadConverter.fromPayload(d))).toEqual(['old', 'new']);
  });

  it('leaves compression alone for small payloads', async () => {
    const p = payloadConverter.toPayload('small');
    expect(await new CompressionCodec().encode([p])).toEqual([p]);
  });
});

describe('sealed key delivery', () => {
  it('round-trips, and only the recipient can open it', () => {
    const me = generateIdentity();
    const other = generateIdentity();
    const sealed = sealFor(me.publicKey, Buffer.from(SECRET));
    expect(Buffer.from(sealed, 'base64').includes(SECRET)).toBe(false);
    expect(openSealed(me.privateKey, sealed).toString()).toBe(SECRET);
    expect(() => openSealed(other.privateKey, sealed)).toThrow(/not for this key or was altered/);
  });

  it('detects tampering and unknown versions', () => {
    const me = generateIdentity();
    const box = Buffer.from(sealFor(me.publicKey, Buffer.from('k')), 'base64');
    for (const at of [5, 40, box.length - 1]) {
      const bad = Buffer.from(box);
      bad[at]! ^= 1;
      expect(() => openSealed(me.privateKey, bad.toString('base64'))).toThrow(/cannot open a sealed data key/);
    }
    const v2 = Buffer.from(box);
    v2[0] = 2;
    expect(() => openSealed(me.privateKey, v2.toString('base64'))).toThrow(/unknown format version 2/);
  });

  it("seals a whole ring, current first; the registry activity seals only the runner's own scopes", async () => {
    const me = generateIdentity();
    const ring = new KeyRing([newDataKey(), newDataKey()]);
    const opened = openKeys(me.privateKey, sealKeys(ring, me.publicKey));
    expect(opened.map((k) => k.id)).toEqual(ring.ids());
    expect(opened.map((k) => k.key.toString('hex'))).toEqual(ring.ids().map((id) => ring.get(id)!.key.toString('hex')));

    // The activity seals only for an operator-admitted registration (test/unit/operator-key.test.ts).
    const operator = generateSigningKey();
    const admit = (publicKey: string) => {
      const t = createRegistrationToken();
      const now = Date.now();
      const grant = tokenGrant(
        { name: 'r1', pool: 'p', labels: {}, temporary: false, slots: 4 },
        t,
        new Date(now).toISOString(),
        new Date(now + 60_000).toISOString(),
      );
      const p = registrationProof(t.token, { name: 'r1', runnerId: 'x', publicKey, signingKey: operator.publicKey });
      return {
        grant,
        signature: signStatement(operator.seed, grant),
        proof: p.proof!,
        proofSignature: p.proofSignature!,
      };
    };
    const registry = createRegistryActivities({ keys: ring, operatorPublicKey: operator.publicKey });
    const sealed = await registry.sealDataKeys({ publicKey: me.publicKey, admission: admit(me.publicKey) });
    const runnerRing = new KeyRing();
    runnerRing.set(openKeys(me.privateKey, sealed));
    // Only the runner's own scopes, derived from every control key: its own key first.
    expect(runnerRing.ids()).toEqual(ring.keysFor(['runner/r1', 'pool/p']).map((k) => k.id));
    expect(runnerRing.current()!.id).toBe(`${ring.current()!.id}+runner/r1`);
    expect(runnerRing.ids().some((id) => !id.includes('+'))).toBe(false);
    await expect(
      registry.sealDataKeys({ publicKey: 'bm90IGEga2V5', admission: admit('bm90IGEga2V5') }),
    ).rejects.toMatchObject({
      type: 'InvalidArgument',
    });
    await expect(registry.sealDataKeys({ publicKey: me.publicKey })).rejects.toMatchObject({ type: 'Unauthorized' });
  });

  it('refuses a public key that is not X25519', () => {
    expect(() => sealFor(Buffer.from('nope').toString('base64'), Buffer.from('x'))).toThrow(/SPKI/);
  });
});

describe('key file', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'runfleet-keys-'));

  it('is created with mode 0600, refuses to overwrite, and rotates keeping old keys', () => {
    const file = join(dir(), 'keys', 'runfleet.keys');
    const first = createKeyFile(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readKeyFile(file).map((k) => k.id)).toEqual([first.id]);
    expect(() => createKeyFile(file)).toThrow(/exists; use --rotate/);
    const second = createKeyFile(file, { rotate: true });
    expect(second.ids).toEqual([second.id, first.id]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const ring = loadKeyRing({ encryption: { keyFile: file } });
    expect(ring.current()!.id).toBe(second.id);
    expect(ring.get(first.id)!.key.length).toBe(32);
    expect(readFileSync(file, 'utf8')).toContain('"version": 1');
  });

  it('is optional: no file, an empty ring', () => {
    expect(loadKeyRing({ encryption: { keyFile: join(dir(), 'none') } }).current()).toBeNull();
    expect(() => createKeyFile(join(dir(), 'none'), { rotate: true })).toThrow(/no data key file/);
  });

  it('tells a file out of reach from no file: never "no keys" then', () => {
    // Root passes permission checks, so a path through a plain file stands in for a locked dir.
    const blocker = join(dir(), 'plain');
    writeFileSync(blocker, '');
    const keyFile = join(blocker, 'runfleet.keys');
    expect(() => loadKeyRing({ encryption: { keyFile } })).toThrow(`cannot read the data key file ${keyFile}: ENOTDIR`);
  });

  it('names the file and the problem when it is malformed', () => {
    const file = join(dir(), 'bad.keys');
    writeFileSync(file, '{"version":1,"keys":[{"id":"a","key":"c2hvcnQ="}]}');
    expect(() => readKeyFile(file)).toThrow(`data key ${'a'} must be 32 bytes, not 5`);
    writeFileSync(file, 'nope');
    expect(() => readKeyFile(file)).toThrow(new RegExp(`data key file ${file} is not JSON`));
    writeFileSync(file, '{"version":2,"keys":[]}');
    expect(() => readKeyFile(file)).toThrow(/version/);
  });
});
