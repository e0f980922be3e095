/**
 * Attacks on a running `runfleet codec-server` (a real process, over HTTP), as someone who can
 * reach its port but holds no token would try: no token, a wrong token, a rebound Host, /encode,
 * an oversize body, a gzip bomb. Each prints what it tried and what happened; the bomb prints the
 * server's memory before and after.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CompressionCodec,
  EncryptionCodec,
  KeyRing,
  createKeyFile,
  payloadConverter,
  readKeyFile,
} from '../../src/codec';
import { gzipBomb, rss } from '../helpers/bombs';
import { rawRequest, type RawResponse } from '../helpers/http';
import { killAll, startRunfleet, type Proc } from '../helpers/processes';
import { until } from '../helpers/until';

const TOKEN = 'security-codec-token-5f0d9a7c1b2e4d6f';
const dir = mkdtempSync(join(tmpdir(), 'runfleet-codec-sec-'));
const keyFile = join(dir, 'keys', 'runfleet.keys');
const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');

let server: Proc;
let url: string;
let port: string;

beforeAll(async () => {
  createKeyFile(keyFile);
  const tokenFile = join(dir, 'codec.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  server = startRunfleet(['codec-server', '--port', '0', '--token-file', tokenFile], {
    env: { RUNFLEET_KEY_FILE: keyFile },
    logFile: join(dir, 'codec-server.log'),
  });
  const started = () => /codec server at (http:\/\/\S+) /.exec(server.output());
  await until('the codec server to start (or exit)', () => started() !== null || server.child.exitCode !== null, {
    timeoutMs: 60_000,
    detail: () => server.output(),
  });
  const m = started();
  if (!m) throw new Error(`the codec server did not start:\n${server.output()}`);
  url = m[1] as string;
  port = new URL(url).port;
});

afterAll(async () => {
  await killAll();
});

async function attack(what: string, path: string, opts: Parameters<typeof rawRequest>[1]): Promise<RawResponse> {
  const res = await rawRequest(`${url}${path}`, opts);
  console.log(`codec-server attack: ${what} -> ${res.status} ${res.body.slice(0, 240)}`);
  return res;
}

async function secretPayload() {
  const codecs = [new CompressionCodec(), new EncryptionCodec(new KeyRing(readKeyFile(keyFile)))];
  let p = [payloadConverter.toPayload({ env: { DEPLOY_KEY: 'hunter2-deploy' } })];
  for (const c of codecs) p = await c.encode(p);
  const [one] = p;
  return {
    metadata: Object.fromEntries(Object.entries(one!.metadata!).map(([k, v]) => [k, b64(v)])),
    data: b64(one!.data),
  };
}

describe('codec server under attack', () => {
  it('decodes for the token holder (the gate is not shut for everyone)', async () => {
    const body = JSON.stringify({ payloads: [await secretPayload()] });
    const res = await attack('decode with the token', '/decode', {
      headers: { authorization: `Bearer ${TOKEN}` },
      body,
    });
    expect(res.status).toBe(200);
    expect(
      Buffer.from((JSON.parse(res.body) as { payloads: { data: string }[] }).payloads[0]!.data, 'base64').toString(),
    ).toContain('hunter2-deploy');
  });

  it('refuses a request without a token', async () => {
    const body = JSON.stringify({ payloads: [await secretPayload()] });
    const res = await attack('decode without a token', '/decode', { body });
    expect(res.status).toBe(401);
    expect(res.body).not.toContain('aHVudGVy'); // nothing decoded in the answer
    expect(JSON.parse(res.body)).toEqual({
      error: 'unauthorized: no bearer token: send Authorization: Bearer <token>',
    });
  });

  it('refuses a wrong token', async () => {
    const body = JSON.stringify({ payloads: [await secretPayload()] });
    const res = await attack('decode with a wrong token', '/decode', {
      headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}0` },
      body,
    });
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized: the bearer token is not accepted' });
  });

  it('refuses a rebound Host even with the token', async () => {
    const res = await attack('decode with Host attacker.example', '/decode', {
      headers: { host: `attacker.example:${port}`, authorization: `Bearer ${TOKEN}` },
      body: '{"payloads": []}',
    });
    expect(res.status).toBe(421);
  });

  it('keeps /encode off by default', async () => {
    const res = await attack('encode with the token', '/encode', {
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ payloads: [{ metadata: {}, data: b64(Buffer.from('"x"')) }] }),
    });
    expect(res.status).toBe(403);
  });

  it('refuses a body over 8 MiB before reading it', async () => {
    const body = JSON.stringify({ payloads: [{ data: 'A'.repeat(9 * 1024 * 1024) }] });
    const res = await attack('a 9 MiB body with the token', '/decode', {
      headers: { authorization: `Bearer ${TOKEN}` },
      body,
    });
    expect(res.status).toBe(413);
  });

  it('refuses gzip bombs without the memory (the issue: a 2 MiB request took it from 126 MiB to 6.6 GiB)', async () => {
    const pid = server.child.pid!;
    const bomb = b64(gzipBomb(512));
    const payload = { metadata: { encoding: b64(Buffer.from('binary/gzip')) }, data: bomb };
    // Four 512 MiB bombs in one request, as in the issue: 2 GiB if inflated.
    const body = JSON.stringify({ payloads: [payload, payload, payload, payload] });
    const before = rss(pid);
    const res = await attack(
      `${(body.length / 1024 / 1024).toFixed(1)} MiB request of four 512 MiB gzip bombs`,
      '/decode',
      {
        headers: { authorization: `Bearer ${TOKEN}` },
        body,
      },
    );
    const after = rss(pid);
    console.log(
      `codec-server attack: server RSS before ${before.now} MiB (peak ${before.peak}), after ${after.now} MiB (peak ${after.peak})`,
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body).error).toMatch(/^a compressed payload inflates to more than 33554432 bytes/);
    expect(after.peak - before.peak).toBeLessThan(256);
    // And without a token the bomb is not even opened.
    const anonymous = await attack('the same bombs without a token', '/decode', { body });
    expect(anonymous.status).toBe(401);
    expect(server.output()).toContain('refused POST /decode');
  });
});
