/** Private registries' credentials from the runner's Docker-format auth file. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistryAuth, registryOf } from '../../src/runner/registry-auth';

const dir = mkdtempSync(join(tmpdir(), 'runfleet-registry-auth-'));
function file(content: unknown): string {
  const f = join(dir, `auth-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}
const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('registryOf', () => {
  it('reads the registry of an image reference, Docker Hub when it names none', () => {
    expect(registryOf('busybox')).toBe('docker.io');
    expect(registryOf('library/busybox:1.36')).toBe('docker.io');
    expect(registryOf('ghcr.io/acme/tool:v1')).toBe('ghcr.io');
    expect(registryOf('127.0.0.1:5000/x/y')).toBe('127.0.0.1:5000');
    expect(registryOf('localhost/x')).toBe('localhost');
  });
});

describe('loadRegistryAuth', () => {
  it("gives each image its registry's credentials (auth or username/password), none to others", () => {
    const auth = loadRegistryAuth(
      file({
        auths: {
          'registry.example.com': { auth: b64('ci:s3cr:et') },
          'https://index.docker.io/v1/': { username: 'hubuser', password: 'hubpw' },
        },
      }),
    );
    expect(auth('registry.example.com/team/app:1')).toEqual({
      username: 'ci',
      password: 's3cr:et',
      serveraddress: 'registry.example.com',
    });
    expect(auth('busybox')).toMatchObject({ username: 'hubuser', password: 'hubpw' });
    expect(auth('ghcr.io/acme/tool')).toBeUndefined();
    // A run file names the image: a lookalike registry must never get another's credentials.
    expect(auth('registry.example.com.evil.io/team/app')).toBeUndefined();
    expect(auth('evil.io/registry.example.com/team/app')).toBeUndefined();
    expect(auth('registry.example.com:5000/team/app')).toBeUndefined();
  });

  it('refuses a file that is not JSON, has no auths, or an entry without credentials, naming it', () => {
    expect(() => loadRegistryAuth(file('{not json'))).toThrow(/runner\.registryAuthFile .*auth-.*\.json: /);
    expect(() => loadRegistryAuth(file({ credsStore: 'desktop' }))).toThrow(/auths: /);
    expect(() => loadRegistryAuth(file({ auths: { 'r.example.com': { username: 'only' } } }))).toThrow(
      /auths\.r\.example\.com: needs "auth"/,
    );
    expect(() => loadRegistryAuth(file({ auths: { 'r.example.com': { auth: b64('nocolon') } } }))).toThrow(
      /auths\.r\.example\.com\.auth is not base64 of user:password/,
    );
  });
});
