import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { connectionOptions, describeConnection } from '../../src/connection';
import { RunfleetError } from '../../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'runfleet-conn-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', 'CA PEM');
const crt = file('client.pem', 'CLIENT CERT');
const key = file('client.key', 'CLIENT KEY');
// No HOME: the user's own ~/.config/temporalio/temporal.toml must not leak into a test.
const config = loadConfig({ cwd: dir, env: {}, flags: { address: 'temporal.example:7233', namespace: 'ci' } });

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RunfleetError);
    expect((err as RunfleetError).code).toBe('InvalidConfig');
    return (err as Error).message;
  }
  throw new Error('expected InvalidConfig');
}

describe('connectionOptions', () => {
  it('is plain TCP with nothing configured', () => {
    expect(connectionOptions(config, {})).toEqual({ address: 'temporal.example:7233', namespace: 'ci' });
  });

  it('reads mTLS, server name, API key and gRPC metadata from the standard variables', () => {
    const opts = connectionOptions(config, {
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: crt,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.internal',
      TEMPORAL_API_KEY: 'k-123',
      TEMPORAL_GRPC_META_X_TEAM: 'ci',
      // Runfleet's own config wins for where to connect.
      TEMPORAL_ADDRESS: 'elsewhere:1',
    });
    expect(opts).toEqual({
      address: 'temporal.example:7233',
      namespace: 'ci',
      tls: {
        serverNameOverride: 'frontend.internal',
        serverRootCACertificate: Buffer.from('CA PEM'),
        clientCertPair: { crt: Buffer.from('CLIENT CERT'), key: Buffer.from('CLIENT KEY') },
      },
      apiKey: 'k-123',
      metadata: { 'x-team': 'ci' },
    });
    expect(describeConnection(opts)).toBe('temporal.example:7233 (mTLS, API key)');
  });

  it('turns TLS on for an API key unless TEMPORAL_TLS=false', () => {
    expect(connectionOptions(config, { TEMPORAL_API_KEY: 'k' }).tls).toBe(true);
    const off = connectionOptions(config, { TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' });
    // Explicitly off: the SDKs would otherwise turn TLS on for the key.
    expect(off.tls).toBe(false);
    expect(off.apiKey).toBe('k');
    expect(connectionOptions(config, { TEMPORAL_TLS: 'true' }).tls).toEqual({});
  });

  it('reads a TOML profile, with variables overriding it', () => {
    const toml = file(
      'temporal.toml',
      [
        '[profile.default]',
        'api_key = "from-file"',
        '[profile.prod]',
        'api_key = "prod-key"',
        '[profile.prod.tls]',
        `server_ca_cert_path = "${ca}"`,
        `client_cert_path = "${crt}"`,
        `client_key_path = "${key}"`,
        'server_name = "prod.internal"',
        '[profile.prod.grpc_meta]',
        'x_tenant = "a"',
      ].join('\n'),
    );
    const prod = connectionOptions(config, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod' });
    expect(prod.tls).toEqual({
      serverNameOverride: 'prod.internal',
      serverRootCACertificate: Buffer.from('CA PEM'),
      clientCertPair: { crt: Buffer.from('CLIENT CERT'), key: Buffer.from('CLIENT KEY') },
    });
    expect(prod.apiKey).toBe('prod-key');
    expect(prod.metadata).toEqual({ 'x-tenant': 'a' });
    expect(connectionOptions(config, { TEMPORAL_CONFIG_FILE: toml }).apiKey).toBe('from-file');
    expect(connectionOptions(config, { TEMPORAL_CONFIG_FILE: toml, TEMPORAL_API_KEY: 'env' }).apiKey).toBe('env');
  });

  it('names the variable or file of a bad value', () => {
    expect(invalid(() => connectionOptions(config, { TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'nope.pem') }))).toBe(
      `TEMPORAL_TLS_SERVER_CA_CERT_PATH: ${join(dir, 'nope.pem')} does not exist`,
    );
    expect(invalid(() => connectionOptions(config, { TEMPORAL_TLS_CLIENT_CERT_PATH: crt }))).toMatch(
      /a client certificate needs its key/,
    );
    expect(invalid(() => connectionOptions(config, { TEMPORAL_CONFIG_FILE: join(dir, 'missing.toml') }))).toBe(
      `TEMPORAL_CONFIG_FILE: ${join(dir, 'missing.toml')} does not exist`,
    );
    const broken = file('broken.toml', '[profile.default\naddress = ');
    expect(invalid(() => connectionOptions(config, { TEMPORAL_CONFIG_FILE: broken }))).toMatch(
      new RegExp(`^TEMPORAL_CONFIG_FILE ${broken}: `),
    );
    const badPath = file('bad-path.toml', `[profile.default.tls]\nserver_ca_cert_path = "${join(dir, 'gone.pem')}"\n`);
    expect(invalid(() => connectionOptions(config, { TEMPORAL_CONFIG_FILE: badPath }))).toBe(
      `TEMPORAL_CONFIG_FILE ${badPath}: tls.server_ca_cert_path: ${join(dir, 'gone.pem')} does not exist`,
    );
    expect(invalid(() => connectionOptions(config, { TEMPORAL_CONFIG_FILE: badPath, TEMPORAL_PROFILE: 'x' }))).toMatch(
      /^TEMPORAL_PROFILE: profile 'x' not found/,
    );
  });
});
