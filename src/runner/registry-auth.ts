/**
 * Credentials for private registries, from the runner's own config (`runner.registryAuthFile`):
 * a file in Docker's `config.json` format (what `docker login` and `podman login --authfile`
 * write), `{"auths": {"registry.example.com": {"auth": "<base64 user:password>"}}}`. A run file
 * never carries them: it names an image, and the runner that pulls it has the keys.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RunfleetError } from '../errors';

export interface RegistryCredential {
  username: string;
  password: string;
  /** The registry, as the engine's pull takes it. */
  serveraddress: string;
}

export type RegistryAuth = (image: string) => RegistryCredential | undefined;

const Entry = z
  .object({
    auth: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .refine((e) => e.auth !== undefined || (e.username !== undefined && e.password !== undefined), {
    message: 'needs "auth" (base64 of user:password) or "username" and "password"',
  });
const AuthFile = z.object({ auths: z.record(z.string(), Entry) });

const DOCKER_HUB = 'docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']);

/**
 * The registry an image reference names: its first path component when that looks like a host
 * (a dot, a port, or `localhost`), else Docker Hub.
 */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return DOCKER_HUB;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : DOCKER_HUB;
}

/** A key of `auths` as the registry it names: scheme and path dropped, Hub's spellings as one. */
function normalise(key: string): string {
  if (HUB_ALIASES.has(key)) return DOCKER_HUB;
  const host = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

/** Reads and checks the file once (at the runner's start); a bad file is an error naming it. */
export function loadRegistryAuth(file: string): RegistryAuth {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new RunfleetError('InvalidConfig', `runner.registryAuthFile ${file}: ${(err as Error).message}`);
  }
  const parsed = AuthFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.map(String).join('.') || '(file)';
    throw new RunfleetError(
      'InvalidConfig',
      `runner.registryAuthFile ${file}: ${where}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const byRegistry = new Map<string, RegistryCredential>();
  for (const [key, entry] of Object.entries(parsed.data.auths)) {
    let username = entry.username;
    let password = entry.password;
    if (entry.auth !== undefined) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 1) {
        throw new RunfleetError(
          'InvalidConfig',
          `runner.registryAuthFile ${file}: auths.${key}.auth is not base64 of user:password`,
        );
      }
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
    byRegistry.set(normalise(key), { username: username!, password: password!, serveraddress: key });
  }
  return (image) => byRegistry.get(registryOf(image));
}
