/**
 * Image pulls of the docker driver, against a real registry (Debian's docker-registry, htpasswd
 * authentication, test/helpers/registry.ts) and a clean engine (a Podman service with storage of
 * its own, empty at first): a private image pulled with the runner's credentials and run,
 * `if-not-present` against `always`, `never` with a missing image, and pulls refused for missing
 * or wrong credentials. Each failure happens before any container exists, and says why.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../../src/runner/docker-driver';
import type { Driver, DriverRun } from '../../src/runner/driver';
import { loadRegistryAuth } from '../../src/runner/registry-auth';
import { BUSYBOX_IMAGE, startTestPodman, type TestPodman } from '../helpers/podman';
import { pushImage, startRegistry, type TestRegistry } from '../helpers/registry';

const projectRoot = resolve(__dirname, '..', '..');
const runner = `pull-test-${process.pid}`;
let registry: TestRegistry;
let podman: TestPodman;
let authFile: string;
const image = (tag: string): string => `${registry.host}/runfleet/busybox:${tag}`;

/** `podman push` of the busybox image to the registry under `tag`. */
function push(tag: string): void {
  pushImage(projectRoot, registry, BUSYBOX_IMAGE, image(tag));
}

beforeAll(async () => {
  registry = await startRegistry(projectRoot);
  for (const tag of ['v1', 'v3']) push(tag);
  podman = await startTestPodman({ registriesConf: registry.registriesConf, cleanEngine: true });
  authFile = join(podman.dir, 'auth.json');
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
  writeFileSync(authFile, JSON.stringify({ auths: { [registry.host]: { auth } } }));
}, 300_000);

afterAll(async () => {
  try {
    await podman?.stop();
  } finally {
    await registry?.stop();
  }
});

const driverWith = (registryAuth?: ReturnType<typeof loadRegistryAuth>): Driver =>
  createDockerDriver({
    socketPath: podman.socketPath,
    runner,
    pool: 'linux',
    ...(registryAuth ? { registryAuth } : {}),
  });

let seq = 0;
function req(steps: string[], extra: Partial<DriverRun>): DriverRun {
  const task = `p${++seq}`;
  const dir = join(podman.dir, task);
  mkdirSync(dir, { recursive: true });
  return {
    steps: steps.map((run) => ({ run })),
    cwd: join(dir, 'ws'),
    env: {},
    logFile: join(dir, 'task.log'),
    sessionDir: join(dir, 'session'),
    labels: { run: 'run/main/pull', task, attempt: 1, runner, pool: 'linux' },
    signal: new AbortController().signal,
    ...extra,
  };
}

const imagesOnEngine = async (): Promise<string[]> =>
  (await podman.docker.listImages()).flatMap((i) => i.RepoTags ?? []).map((t) => t.replace(/^localhost\//, ''));

describe('docker driver image pulls', () => {
  it("pulls a private image the engine lacks with the runner's credentials, then runs the task in it", async () => {
    expect(await imagesOnEngine()).toEqual([]);
    const r = req(['echo hello from the pulled image'], { image: image('v1') });
    const result = await driverWith(loadRegistryAuth(authFile)).run(r);
    const log = readFileSync(r.logFile, 'utf8');
    expect(result.exitCode, log).toBe(0);
    expect(log).toContain(`==> pulling ${image('v1')} as runfleet (pull: if-not-present)`);
    expect(log).toMatch(/==> pulled .* in \d+\.\d s/);
    expect(log).toContain('hello from the pulled image');
    expect(await imagesOnEngine()).toContain(image('v1'));
  }, 180_000);

  it('if-not-present leaves an image the engine has; always pulls it again', async () => {
    const driver = driverWith(loadRegistryAuth(authFile));
    const present = req(['true'], { image: image('v1') });
    expect((await driver.run(present)).exitCode).toBe(0);
    expect(readFileSync(present.logFile, 'utf8')).not.toContain('==> pulling');
    const always = req(['true'], { image: image('v1'), pull: 'always' });
    expect((await driver.run(always)).exitCode).toBe(0);
    expect(readFileSync(always.logFile, 'utf8')).toContain(`==> pulling ${image('v1')} as runfleet (pull: always)`);
  }, 180_000);

  it('never: an image the engine lacks fails the task, saying so, and nothing is pulled', async () => {
    const r = req(['true'], { image: image('v3'), pull: 'never' });
    await expect(driverWith(loadRegistryAuth(authFile)).run(r)).rejects.toThrow(
      new RegExp(`image ${image('v3')} is not on the engine at .*, and its pull policy is never`),
    );
    expect(await imagesOnEngine()).not.toContain(image('v3'));
  }, 60_000);

  it("a pull without credentials, or with wrong ones, fails the task with the registry's refusal", async () => {
    const none = req(['true'], { image: image('v3') });
    await expect(driverWith().run(none)).rejects.toThrow(
      new RegExp(`pulling image ${image('v3')} failed: .*(unauthorized|authentication required)`, 'i'),
    );
    const wrongFile = join(podman.dir, 'wrong.json');
    writeFileSync(
      wrongFile,
      JSON.stringify({ auths: { [registry.host]: { username: 'runfleet', password: 'nope' } } }),
    );
    const wrong = req(['true'], { image: image('v3') });
    await expect(driverWith(loadRegistryAuth(wrongFile)).run(wrong)).rejects.toThrow(
      new RegExp(`pulling image ${image('v3')} failed: .*(unauthorized|authentication required)`, 'i'),
    );
    expect(await imagesOnEngine()).not.toContain(image('v3'));
    // Refused before any container was made.
    const containers = await podman.docker.listContainers({ all: true });
    expect(containers.filter((c) => c.Labels?.['runfleet.runner'] === runner && c.Image === image('v3'))).toEqual([]);
  }, 120_000);
});
