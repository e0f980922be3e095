import { statSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import {
  createOperatorKeyFile,
  generateSigningKey,
  parseToken,
  readOperatorKeyFile,
  signStatement,
  verifyStatementNode,
} from '../../src/security/operator';
import { createRegistrationToken, registrationProof, tokenGrant } from '../../src/registry/token';
import { canonicalJson, operatorCommand, verifyStatement, type OperatorCommand } from '../../src/security/statements';
import { verifyAdmission, verifyCommand } from '../../activities/registry';

const PUBLIC_KEY = Buffer.alloc(44, 7).toString('base64');

function admission(operator = generateSigningKey()) {
  const t = createRegistrationToken();
  const now = Date.now();
  const grant = tokenGrant(
    { name: 'r1', pool: 'linux', labels: {}, temporary: false, slots: 4 },
    t,
    new Date(now).toISOString(),
    new Date(now + 3_600_000).toISOString(),
  );
  const signing = generateSigningKey();
  const p = registrationProof(t.token, {
    name: 'r1',
    runnerId: 'id-1',
    publicKey: PUBLIC_KEY,
    signingKey: signing.publicKey,
  });
  return {
    operator,
    admission: {
      grant,
      signature: signStatement(operator.seed, grant),
      proof: p.proof!,
      proofSignature: p.proofSignature!,
    },
  };
}

describe('operator signatures', () => {
  it('canonical JSON sorts keys at every level and leaves out undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: undefined }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[1,{"z":1}]},"b":1}',
    );
  });

  it('node:crypto and @noble/curves agree on signatures, and both refuse a changed statement', () => {
    const key = generateSigningKey();
    const cmd = operatorCommand(
      'r1',
      'purge',
      { by: 'ann', reason: 'gone' },
      {
        at: new Date().toISOString(),
        nonce: 'ab'.repeat(8),
        signature: '',
      },
    );
    const sig = signStatement(key.seed, cmd);
    expect(verifyStatementNode(key.publicKey, cmd, sig)).toBe(true);
    expect(verifyStatement(key.publicKey, cmd, sig)).toBe(true);
    const other: OperatorCommand = { ...cmd, runner: 'r2' };
    expect(verifyStatementNode(key.publicKey, other, sig)).toBe(false);
    expect(verifyStatement(key.publicKey, other, sig)).toBe(false);
    expect(verifyStatement(generateSigningKey().publicKey, cmd, sig)).toBe(false);
    expect(verifyStatement('not a key', cmd, sig)).toBe(false);
  });

  it('measures @noble/curves ed25519 verification (what a workflow validator pays)', () => {
    const key = generateSigningKey();
    const { admission: a } = admission(key);
    verifyStatement(a.grant.tokenKey, a.proof, a.proofSignature); // warm up
    const n = 50;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) expect(verifyStatement(a.grant.tokenKey, a.proof, a.proofSignature)).toBe(true);
    const noble = (performance.now() - t0) / n;
    const t1 = performance.now();
    for (let i = 0; i < n; i++) verifyStatementNode(a.grant.tokenKey, a.proof, a.proofSignature);
    const node = (performance.now() - t1) / n;
    console.log(
      `ed25519 verify: @noble/curves ${noble.toFixed(2)} ms, node:crypto ${node.toFixed(3)} ms per signature`,
    );
    expect(noble).toBeLessThan(50);
  });

  it('writes the operator key file 0600 and reads it back; a second create is refused', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'runfleet-op-')), 'keys', 'operator.key');
    const key = createOperatorKeyFile(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readOperatorKeyFile(file)).toMatchObject({ publicKey: key.publicKey, seed: key.seed });
    expect(() => createOperatorKeyFile(file)).toThrow(/exists/);
    expect(readOperatorKeyFile(join(file, '..', 'none'))).toBeNull();
  });

  it('a token holds a seed; its public key is derived, never the other way round', () => {
    const t = createRegistrationToken();
    expect(parseToken(t.token)).toMatchObject({ id: t.id, key: { publicKey: t.publicKey } });
    expect(() => parseToken('rfr_zz_nope')).toThrow(/not a registration token/);
  });

  it('the control worker admits only an operator-signed grant and a proof by its token over this key', () => {
    const { operator, admission: a } = admission();
    expect(verifyAdmission(operator.publicKey, a, PUBLIC_KEY, 'runner/r1').pool).toBe('linux');
    const code = (f: () => unknown) => {
      try {
        f();
        return 'ok';
      } catch (err) {
        return `${(err as { code?: string }).code}: ${(err as Error).message}`;
      }
    };
    expect(code(() => verifyAdmission(null, a, PUBLIC_KEY, null))).toMatch(/^Unauthorized: .*no operator public key/);
    expect(code(() => verifyAdmission(operator.publicKey, undefined, PUBLIC_KEY, null))).toMatch(/^Unauthorized/);
    // Another operator key, an altered grant, another workflow, another sealing key.
    expect(code(() => verifyAdmission(generateSigningKey().publicKey, a, PUBLIC_KEY, null))).toMatch(
      /not signed by the operator key/,
    );
    const altered = { ...a, grant: { ...a.grant, pool: 'gpu' } };
    expect(code(() => verifyAdmission(operator.publicKey, altered, PUBLIC_KEY, null))).toMatch(
      /not signed by the operator/,
    );
    expect(code(() => verifyAdmission(operator.publicKey, a, PUBLIC_KEY, 'runner/r2'))).toMatch(/not for runner\/r2/);
    expect(code(() => verifyAdmission(operator.publicKey, a, Buffer.alloc(44, 1).toString('base64'), null))).toMatch(
      /another token or key/,
    );
    const forged = { ...a, proofSignature: signStatement(generateSigningKey().seed, a.proof) };
    expect(code(() => verifyAdmission(operator.publicKey, forged, PUBLIC_KEY, null))).toMatch(/proof is not signed/);
  });

  it('the control worker takes an operator command for its own runner, signed, and recent', () => {
    const key = generateSigningKey();
    const now = Date.now();
    const sig = { at: new Date(now).toISOString(), nonce: 'ab'.repeat(8), signature: '' };
    const cmd = operatorCommand('r1', 'configure', { slots: 2, by: 'ann', operator: sig }, sig);
    expect(cmd.args).toEqual({ slots: 2, by: 'ann' });
    const s = signStatement(key.seed, cmd);
    expect(() => verifyCommand(key.publicKey, cmd, s, 'runner/r1', now)).not.toThrow();
    expect(() => verifyCommand(key.publicKey, { ...cmd, args: { slots: 200, by: 'ann' } }, s, null, now)).toThrow(
      /not signed by the operator key/,
    );
    expect(() => verifyCommand(key.publicKey, cmd, s, 'runner/r2', now)).toThrow(/not for runner\/r2/);
    expect(() => verifyCommand(key.publicKey, cmd, s, null, now + 10 * 60_000)).toThrow(/too old/);
  });
});
