/**
 * Secured Temporal connections from Temporal's standard client configuration alone. The dev
 * server speaks plain gRPC, so a TLS-terminating proxy in this test (node:tls, mTLS, ALPN h2)
 * stands in front of it; the client and the workers reach the server only through the proxy.
 * API keys: the dev server does not check them, so a plain HTTP/2 proxy records the
 * `authorization` header the client and the worker send.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import { TemporalHttpApi } from '../../src/client/http-api';
import { HttpRunReader } from '../../src/client/http-reader';
import { createDataConverter } from '../../src/codec';
import { loadConfig } from '../../src/config';
import { connectionOptions } from '../../src/connection';
import { RunfleetError } from '../../src/errors';
import { connectWorker } from '../../src/cli/runtime';
import { createControlWorker } from '../../workers/control';
import { createRunner } from '../../workers/runner';
import { startHarness, workflowBundle, type Harness } from '../helpers/harness';
import { temporalHttpAddress, uniqueName } from '../helpers/temporal';

const dir = mkdtempSync(join(tmpdir(), 'runfleet-tls-'));
const pem = (name: string) => join(dir, name);

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed (is openssl installed?): ${String(err)}`);
  }
}

/** A CA and a certificate it signs (for `localhost` / 127.0.0.1). */
function makeCa(name: string): void {
  openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`].concat([
      '-keyout',
      pem(`${name}.key`),
      '-out',
      pem(`${name}.pem`),
    ]),
  );
}
function makeCert(name: string, ca: string, server: boolean): void {
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    pem(`${name}.key`),
    '-out',
    pem(`${name}.csr`),
  ]);
  const ext = pem(`${name}.ext`);
  writeFileSync(
    ext,
    server
      ? 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
      : 'extendedKeyUsage=clientAuth\n',
  );
  openssl(
    ['x509', '-req', '-in', pem(`${name}.csr`), '-CA', pem(`${ca}.pem`), '-CAkey', pem(`${ca}.key`)].concat([
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      pem(`${name}.pem`),
    ]),
  );
}

let h: Harness;
let proxy: tls.Server;
let proxyPort: number;
let handshakes = 0;
const sockets = new Set<net.Socket>();

beforeAll(async () => {
  makeCa('ca');
  makeCa('other-ca');
  makeCert('server', 'ca', true);
  makeCert('client', 'ca', false);
  h = await startHarness({ withControl: false });
  const [devHost, devPort] = [
    h.address.slice(0, h.address.lastIndexOf(':')),
    Number(h.address.slice(h.address.lastIndexOf(':') + 1)),
  ];
  proxy = tls.createServer(
    {
      key: readFileSync(pem('server.key')),
      cert: readFileSync(pem('server.pem')),
      ca: readFileSync(pem('ca.pem')),
      // mTLS: no client certificate signed by our CA, no connection.
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (client) => {
      handshakes++;
      const upstream = net.connect(devPort, devHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    },
  );
  proxy.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyPort = (proxy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await h?.stop();
});

const mtlsEnv = () => ({
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('ca.pem'),
  TEMPORAL_TLS_CLIENT_CERT_PATH: pem('client.pem'),
  TEMPORAL_TLS_CLIENT_KEY_PATH: pem('client.key'),
});

function configFor(env: Record<string, string>) {
  // Exactly what the CLI does: Runfleet's config from the environment, then the connection from it.
  return loadConfig({ cwd: dir, env: { TEMPORAL_ADDRESS: `localhost:${proxyPort}`, ...env } });
}

describe('TLS from the standard client configuration', () => {
  it('runs a run end to end with client, control worker and runner all behind mTLS (TEMPORAL_TLS_* only)', async () => {
    const env = mtlsEnv();
    const config = configFor(env);
    const options = connectionOptions(config, env);
    expect(options.tls).toMatchObject({ clientCertPair: {} });
    const before = handshakes;

    const controlQueue = uniqueName('tls-control');
    const pool = uniqueName('tls-pool');
    const connection = await connectWorker(options);
    const runnerConnection = await connectWorker(options);
    const control = await createControlWorker({
      connection,
      namespace: 'default',
      taskQueue: controlQueue,
      workflowBundle: await workflowBundle(),
      maxCachedWorkflows: 20,
      // The runner is in-process, with no registry record: nothing vouches for a signing key.
      requireRunnerProofs: false,
    });
    const runner = await createRunner({
      connection: runnerConnection,
      namespace: 'default',
      name: uniqueName('tls-r'),
      pool,
      slots: 1,
      dataDir: join(dir, 'runner'),
      passEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      shutdownGraceMs: 1_000,
      dataConverter: createDataConverter(),
    });
    const controlDone = control.run();
    const runnerDone = runner.run();
    const rf = await RunfleetClient.connect({ ...options, controlTaskQueue: controlQueue });
    try {
      const submitted = await rf.submitRun({
        name: 'over-tls',
        group: '/test/tls',
        tasks: [{ name: 'hello', steps: ['echo over tls'], pool }],
      });
      const final = await rf.waitRun(submitted.workflowId);
      expect(final.result).toBe('success');
      // Everything went through the proxy: client, control worker and runner connections.
      expect(handshakes - before).toBeGreaterThanOrEqual(3);
    } finally {
      await rf.close();
      runner.shutdown();
      control.shutdown();
      await Promise.all([runnerDone, controlDone]);
      await runnerConnection.close();
      await connection.close();
    }
  });

  it('reads the same from a TOML profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE)', async () => {
    const toml = join(dir, 'temporal.toml');
    writeFileSync(
      toml,
      [
        '[profile.default]',
        'address = "ignored:1"',
        '[profile.secure.tls]',
        `server_ca_cert_path = "${pem('ca.pem')}"`,
        `client_cert_path = "${pem('client.pem')}"`,
        `client_key_path = "${pem('client.key')}"`,
        '',
      ].join('\n'),
    );
    const env = { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'secure' };
    const options = connectionOptions(configFor(env), env);
    const rf = await RunfleetClient.connect({ ...options, controlTaskQueue: 'unused' });
    try {
      const ns = await rf.client.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
    } finally {
      await rf.close();
    }
    const worker = await connectWorker(options);
    try {
      const info = await worker.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await worker.close();
    }
  });

  it('fails with a clear error when the server is not signed by the configured CA', async () => {
    const env = { ...mtlsEnv(), TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('other-ca.pem') };
    const options = connectionOptions(configFor(env), env);
    const err = await RunfleetClient.connect({ ...options, controlTaskQueue: 'unused', connectTimeoutMs: 3_000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('ServerUnreachable');
    expect((err as Error).message).toContain(`localhost:${proxyPort}`);
    expect((err as Error).message).toContain('signed by the configured CA (TEMPORAL_TLS_SERVER_CA_CERT_PATH)');
    const workerErr = await connectWorker(options).catch((e: unknown) => e);
    expect(workerErr).toBeInstanceOf(RunfleetError);
    expect((workerErr as Error).message).toMatch(/localhost:\d+ \(mTLS\).*UnknownIssuer/);
    console.log(`wrong CA: client: ${(err as Error).message}\nworker: ${(workerErr as Error).message}`);
  });
});

describe("Temporal's HTTP API (run list) behind the same mTLS", () => {
  /** An mTLS-terminating proxy (HTTP/1.1) in front of the dev server's HTTP API; its port and its handshake count. */
  async function httpsProxy(): Promise<{ port: number; handshakes: () => number; close: () => Promise<void> }> {
    const upstream = temporalHttpAddress();
    const colon = upstream.lastIndexOf(':');
    let count = 0;
    const open = new Set<net.Socket>();
    const server = tls.createServer(
      {
        key: readFileSync(pem('server.key')),
        cert: readFileSync(pem('server.pem')),
        ca: readFileSync(pem('ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (client) => {
        count++;
        const up = net.connect(Number(upstream.slice(colon + 1)), upstream.slice(0, colon));
        for (const sock of [client, up]) {
          open.add(sock);
          sock.on('close', () => open.delete(sock));
          sock.on('error', () => undefined);
        }
        client.pipe(up).pipe(client);
      },
    );
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as net.AddressInfo).port,
      handshakes: () => count,
      close: async () => {
        for (const sock of open) sock.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  /** What the CLI's `run list` does with this environment: config, connection, then the HTTP reader. */
  function reader(port: number, env: Record<string, string>): HttpRunReader {
    const config = configFor(env);
    return new HttpRunReader(
      new TemporalHttpApi({
        httpAddress: `127.0.0.1:${port}`,
        connection: connectionOptions(config, env),
        connectTimeoutMs: 3_000,
      }),
    );
  }

  it('lists with the client certificate and the CA of TEMPORAL_TLS_*, and refuses a server or a name it cannot verify', async () => {
    const proxy = await httpsProxy();
    try {
      const page = await reader(proxy.port, mtlsEnv()).listRunsPage({ limit: 5 });
      expect(Array.isArray(page.runs)).toBe(true);
      expect(proxy.handshakes()).toBe(1);
      expect(
        await reader(proxy.port, { ...mtlsEnv(), TEMPORAL_TLS_SERVER_NAME: 'localhost' }).countRuns(),
      ).toBeGreaterThanOrEqual(0);

      const failures: Record<string, Record<string, string>> = {
        'no client certificate': { TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('ca.pem') },
        'a server signed by another CA': { ...mtlsEnv(), TEMPORAL_TLS_SERVER_CA_CERT_PATH: pem('other-ca.pem') },
        'a server name the certificate does not hold': { ...mtlsEnv(), TEMPORAL_TLS_SERVER_NAME: 'evil.example' },
      };
      for (const [what, env] of Object.entries(failures)) {
        const err = await reader(proxy.port, env)
          .listRunsPage()
          .then(
            () => null,
            (e: unknown) => e,
          );
        expect(err, what).toBeInstanceOf(RunfleetError);
        expect((err as RunfleetError).code, what).toBe('ServerUnreachable');
        expect((err as Error).message, what).toContain(`cannot reach Temporal's HTTP API at 127.0.0.1:${proxy.port}`);
        console.log(`HTTP API, ${what}: ${(err as Error).message}`);
      }
    } finally {
      await proxy.close();
    }
  });
});

describe('API key from the standard client configuration', () => {
  it('is sent by the client and the worker as Authorization: Bearer', async () => {
    // The dev server ignores API keys: an HTTP/2 proxy records what arrives instead.
    const seen: string[] = [];
    const upstream = http2.connect(`http://${h.address}`);
    upstream.on('error', () => undefined);
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      if (headers['authorization']) seen.push(String(headers['authorization']));
      const forward: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(headers))
        if (!k.startsWith(':') || k === ':method' || k === ':path') forward[k] = v;
      const req = upstream.request(forward, { endStream: false });
      let trailers: http2.IncomingHttpHeaders | null = null;
      stream.pipe(req);
      req.on('response', (h2) => {
        const out: http2.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(h2)) if (k === ':status' || !k.startsWith(':')) out[k] = v;
        stream.respond(out, { waitForTrailers: true });
        req.pipe(stream);
      });
      req.on('trailers', (t) => (trailers = t));
      stream.on('wantTrailers', () => (trailers ? stream.sendTrailers(trailers) : stream.close()));
      req.on('error', () => stream.destroy());
      stream.on('error', () => req.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      // An API key alone turns TLS on (as in every SDK); this proxy is plain, so say so.
      const env = { TEMPORAL_API_KEY: 'rf-test-key', TEMPORAL_TLS: 'false', TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
      const options = connectionOptions(loadConfig({ cwd: dir, env }), env);
      expect(options).toMatchObject({ apiKey: 'rf-test-key' });
      expect(options.tls).toBe(false);
      const rf = await RunfleetClient.connect({ ...options, controlTaskQueue: 'unused' });
      try {
        await rf.client.workflowService.describeNamespace({ namespace: 'default' });
      } finally {
        await rf.close();
      }
      const fromClient = seen.length;
      expect(fromClient).toBeGreaterThan(0);
      const worker = await connectWorker(options);
      try {
        await worker.workflowService.getSystemInfo({});
      } finally {
        await worker.close();
      }
      expect(seen.length).toBeGreaterThan(fromClient);
      expect(new Set(seen)).toEqual(new Set(['Bearer rf-test-key']));
    } finally {
      upstream.close();
      server.close();
    }
  });
});
