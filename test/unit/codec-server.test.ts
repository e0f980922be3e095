/**
 * The codec server's gate, in process: tokens (shared and Web UI access tokens), Host, Origin,
 * /encode, body and decode limits. Each test prints what it tried and what came back.
 */
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompressionCodec, EncryptionCodec, KeyRing, newDataKey, payloadConverter } from '../../src/codec';
import { startCodecServer, type CodecServer } from '../../src/codec/server';
import { createAuthenticator } from '../../src/codec/server-auth';
import { codecAuth } from '../../src/cli/commands/codec-server';
import { RunfleetError } from '../../src/errors';
import { rawRequest } from '../helpers/http';

const TOKEN = 'codec-test-token-0123456789abcdef';
const ISSUER = 'https://idp.example.com/';
const AUDIENCE = 'temporal-ui';
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = [
  { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', use: 'sig' },
  { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' },
];

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
function jwt(alg: 'RS256' | 'ES256', key: KeyObject, claims: Record<string, unknown>, kid?: string): string {
  const head = `${b64({ alg, typ: 'JWT', kid: kid ?? (alg === 'RS256' ? 'rsa-1' : 'ec-1') })}.${b64(claims)}`;
  const sig = sign('sha256', Buffer.from(head), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${head}.${sig.toString('base64url')}`;
}
const now = Math.floor(Date.now() / 1000);
const good = { iss: ISSUER, aud: [AUDIENCE, 'other'], sub: 'alice', exp: now + 300 };

describe('codec server authentication', () => {
  const auth = createAuthenticator({ tokens: [TOKEN], jwt: { keys: jwks, issuer: ISSUER, audience: AUDIENCE } });
  const cases: [string, string | undefined, boolean][] = [
    ['the shared token', `Bearer ${TOKEN}`, true],
    ['no header', undefined, false],
    ['a wrong token', 'Bearer codec-test-token-0123456789abcdeX', false],
    ['the token as Basic', `Basic ${TOKEN}`, false],
    ['an RS256 access token', `Bearer ${jwt('RS256', rsa.privateKey, good)}`, true],
    ['an ES256 access token', `Bearer ${jwt('ES256', ec.privateKey, good)}`, true],
    ['another issuer', `Bearer ${jwt('RS256', rsa.privateKey, { ...good, iss: 'https://evil/' })}`, false],
    ['another audience', `Bearer ${jwt('RS256', rsa.privateKey, { ...good, aud: 'other' })}`, false],
    ['an expired token', `Bearer ${jwt('RS256', rsa.privateKey, { ...good, exp: now - 3600 })}`, false],
    ['no exp', `Bearer ${jwt('RS256', rsa.privateKey, { ...good, exp: undefined })}`, false],
    ['a future nbf', `Bearer ${jwt('RS256', rsa.privateKey, { ...good, nbf: now + 3600 })}`, false],
    [
      'signed by another key',
      `Bearer ${jwt('RS256', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, good)}`,
      false,
    ],
    ['a kid signed with the other alg', `Bearer ${jwt('ES256', ec.privateKey, good, 'rsa-1')}`, false],
    ['alg none', `Bearer ${b64({ alg: 'none' })}.${b64(good)}.`, false],
  ];
  for (const [what, header, ok] of cases) {
    it(`${ok ? 'accepts' : 'refuses'} ${what}`, () => {
      const result = auth(header);
      console.log(`auth: ${what} -> ${JSON.stringify(result)}`);
      expect(result.ok).toBe(ok);
    });
  }

  it('refuses an HS256 token keyed with the public key (algorithm confusion)', () => {
    const head = `${b64({ alg: 'HS256', kid: 'rsa-1' })}.${b64(good)}`;
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
    const sig = createHmac('sha256', pem).update(head).digest('base64url');
    const result = auth(`Bearer ${head}.${sig}`);
    console.log(`auth: HS256 with the public key as secret -> ${JSON.stringify(result)}`);
    expect(result).toEqual({ ok: false, why: "the access token's algorithm HS256 is not accepted (RS256, ES256)" });
  });
});

describe('codec-server auth flags', () => {
  it('needs a token unless --unauthenticated, and takes none from a flag value', () => {
    const err = (() => {
      try {
        return codecAuth({}, {}, '/');
      } catch (e) {
        return e;
      }
    })();
    console.log(`codecAuth with nothing -> ${(err as Error).message}`);
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidArgument');
    expect(codecAuth({ unauthenticated: true }, {}, '/')).toBeNull();
    expect(codecAuth({}, { RUNFLEET_CODEC_TOKEN: TOKEN }, '/')?.options.tokens).toEqual([TOKEN]);
    expect(() => codecAuth({}, { RUNFLEET_CODEC_TOKEN: 'short' }, '/')).toThrow(/at least 16 characters/);
    expect(() => codecAuth({ jwks: '/x' }, {}, '/')).toThrow('--jwks, --jwt-issuer and --jwt-audience go together');
  });
});

describe('codec server over HTTP', () => {
  const ring = new KeyRing([newDataKey()]);
  const codecs = [new CompressionCodec(), new EncryptionCodec(ring)];
  let server: CodecServer;
  let port: number;
  const refused: string[] = [];
  const secret = { script: 'echo hunter2' };
  let encrypted: { metadata: Record<string, string>; data: string };

  beforeAll(async () => {
    server = await startCodecServer({
      codecs,
      auth: createAuthenticator({ tokens: [TOKEN] }),
      port: 0,
      origins: ['http://localhost:8233'],
      maxBodyBytes: 128 * 1024,
      onRefused: (status, why) => refused.push(`${status} ${why}`),
    });
    port = Number(new URL(server.url).port);
    let p = [payloadConverter.toPayload(secret)];
    for (const c of codecs) p = await c.encode(p);
    const [one] = p;
    encrypted = {
      metadata: Object.fromEntries(
        Object.entries(one!.metadata!).map(([k, v]) => [k, Buffer.from(v!).toString('base64')]),
      ),
      data: Buffer.from(one!.data!).toString('base64'),
    };
  });
  afterAll(() => server.close());

  const post = (path: string, headers: Record<string, string>, body: string | Buffer = '{"payloads": []}') =>
    rawRequest(`http://127.0.0.1:${port}${path}`, { headers: { host: `127.0.0.1:${port}`, ...headers }, body });
  const auth = { authorization: `Bearer ${TOKEN}` };

  async function attempt(what: string, path: string, headers: Record<string, string>, body?: string | Buffer) {
    const res = await post(path, headers, body);
    console.log(`codec server: ${what} -> ${res.status} ${res.body.slice(0, 200)}`);
    return res;
  }

  it('decodes for the token holder', async () => {
    const res = await attempt('decode with the token', '/decode', auth, JSON.stringify({ payloads: [encrypted] }));
    expect(res.status).toBe(200);
    const out = JSON.parse(res.body) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(JSON.parse(Buffer.from(out.payloads[0]!.data, 'base64').toString())).toEqual(secret);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('refuses a request without a token, or with a wrong one, with 401 and a reason', async () => {
    const body = JSON.stringify({ payloads: [encrypted] });
    const none = await attempt('decode without a token', '/decode', {}, body);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="runfleet-codec"');
    expect(JSON.parse(none.body)).toEqual({
      error: 'unauthorized: no bearer token: send Authorization: Bearer <token>',
    });
    const wrong = await attempt(
      'decode with a wrong token',
      '/decode',
      { authorization: 'Bearer nope-nope-nope-nope' },
      body,
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body).not.toContain('hunter2');
  });

  it('refuses a Host it does not serve (DNS rebinding) with 421', async () => {
    const res = await attempt('decode addressed to evil.example', '/decode', { ...auth, host: `evil.example:${port}` });
    expect(res.status).toBe(421);
    expect(JSON.parse(res.body).error).toMatch(/^Host "evil.example:\d+" is not served here/);
    const local = await attempt('decode addressed to localhost', '/decode', { ...auth, host: `localhost:${port}` });
    expect(local.status).toBe(200);
  });

  it('answers CORS only for its configured origins', async () => {
    const ok = await rawRequest(`http://127.0.0.1:${port}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:8233', 'access-control-request-headers': 'authorization' },
    });
    console.log(`codec server: preflight from the Web UI -> ${ok.status} ${JSON.stringify(ok.headers)}`);
    expect(ok.status).toBe(204);
    expect(ok.headers['access-control-allow-origin']).toBe('http://localhost:8233');
    const res = await attempt('decode from https://evil.example', '/decode', {
      ...auth,
      origin: 'https://evil.example',
    });
    expect(res.status).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('keeps /encode off unless allowed', async () => {
    const res = await attempt('encode with the token', '/encode', auth, JSON.stringify({ payloads: [] }));
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ error: '/encode is off on this codec server (--allow-encode turns it on)' });
  });

  it('refuses a body over its limit with 413', async () => {
    const big = JSON.stringify({ payloads: [{ data: 'A'.repeat(200 * 1024) }] });
    const res = await attempt('a 200 KiB body (limit 128 KiB)', '/decode', auth, big);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toEqual({ error: 'the body is over 131072 bytes: refused' });
  });

  it('refuses a text/plain body (a cross-site form post)', async () => {
    const res = await attempt('decode as text/plain', '/decode', { ...auth, 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
  });

  it('refuses a gzip bomb with 413 and keeps serving', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeros, ~64 KiB gzipped
    const body = JSON.stringify({
      payloads: [
        { metadata: { encoding: Buffer.from('binary/gzip').toString('base64') }, data: bomb.toString('base64') },
      ],
    });
    const res = await rawRequest(`http://127.0.0.1:${port}/decode`, { headers: auth, body });
    console.log(`codec server: a ${bomb.length}-byte gzip bomb (64 MiB inflated) -> ${res.status} ${res.body}`);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toMatch(/inflates to more than 33554432 bytes/);
    expect(refused.some((r) => r.startsWith('413 a compressed payload'))).toBe(true);
    const after = await attempt('decode after the bomb', '/decode', auth, JSON.stringify({ payloads: [encrypted] }));
    expect(after.status).toBe(200);
  });
});
