/**
 * The kubernetes driver on a real one-node Kubernetes (API server, scheduler and kubelet v1.34 on
 * containerd, built and started by the project's own scripts: test/helpers/kubernetes.ts). Every
 * pod goes through a namespace that enforces the restricted Pod Security Standard, and the driver
 * uses a service account that may only run pods there (docs/kubernetes.md's Role).
 *
 * The driver alone: success and failure with the exit code and failed step, env, working dir and
 * outputs, the pod's labels and security context, logs while the pod runs, a stop, kill -9 of the
 * runner then re-attach with the true outcome, a pod gone without an outcome, the sweep of a gone
 * runner's pods, a bad image, refusals before any pod, and the runner's credentials refused
 * outside their namespace. Then a registered runner process offering `process,kubernetes` on the
 * dev server: it advertises the driver, a run's `driver: kubernetes` task lands on it only, a
 * timeout and a stop delete the pod, and after kill -9 it re-attaches and reports the outcome.
 * Last, Runfleet's image (test/helpers/image.ts) as a runner pod with the service account token
 * the kubelet mounts, no kubeconfig: a run's kubernetes task succeeds through it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RunfleetClient } from '../../src/client/client';
import type { RunnerAdmin } from '../../src/client/runners';
import { DEFAULT_CONTAINER_POLICY } from '../../src/runner/docker-driver';
import type { Driver, DriverResult, DriverRun, SessionRecord } from '../../src/runner/driver';
import {
  createKubernetesDriver,
  podName,
  POD_MANAGED_LABEL,
  type KubernetesPolicy,
} from '../../src/runner/kubernetes-driver';
import type { RunState } from '../../src/types';
import { startHarness, testRunnerAdmin, type Harness } from '../helpers/harness';
import { startTestKubernetes, type TestKubernetes } from '../helpers/kubernetes-setup';
import { buildRunfleetImage } from '../helpers/image';
import { BUSYBOX_IMAGE, podmanConfFile, podmanEnv } from '../helpers/podman';
import { pushImage, startRegistry } from '../helpers/registry';
import {
  killAll,
  projectRoot,
  registerRunner,
  startRunnerProcess,
  untilRunnerReady,
  type Proc,
} from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { readWholeTaskLog } from '../helpers/task-log';
import { until } from '../helpers/until';

let k: TestKubernetes;
let h: Harness;
let admin: RunnerAdmin;
let rf: RunfleetClient;
let driver: Driver;
const runner = `k8s-test-${process.pid}`;

function policy(extra: Partial<KubernetesPolicy> = {}): KubernetesPolicy {
  return { namespace: k.namespace, nodeSelector: {}, serviceAccounts: [], imagePullSecrets: [], ...extra };
}

beforeAll(async () => {
  // The cluster first: if it cannot start, every test fails with its reason.
  k = await startTestKubernetes();
  console.log(`kubernetes: node Ready ${k.startMs} ms after start (binaries cached)`);
  driver = createKubernetesDriver({
    kubeconfig: k.runnerKubeconfig,
    runner,
    pool: 'k8s',
    policy: policy(),
    container: DEFAULT_CONTAINER_POLICY,
  });
  h = await startHarness({ runners: [] });
  admin = testRunnerAdmin(h.client, h.controlQueue);
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
}, 600_000);
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
  await k?.cluster.stop();
});

/** The namespace's pods, as cluster admin. */
async function pods(selector = `${POD_MANAGED_LABEL}=1`): Promise<V1Pod[]> {
  const r = await k.cluster.api(
    'GET',
    `/api/v1/namespaces/${k.namespace}/pods?labelSelector=${encodeURIComponent(selector)}`,
  );
  return (r.body as { items: V1Pod[] }).items;
}

async function pod(name: string): Promise<V1Pod | null> {
  const r = await k.cluster.api('GET', `/api/v1/namespaces/${k.namespace}/pods/${name}`);
  return r.status === 404 ? null : (r.body as V1Pod);
}

let seq = 0;
function req(steps: (string | DriverRun['steps'][number])[], extra: Partial<DriverRun> = {}): DriverRun {
  const task = `t${++seq}-${process.pid}`;
  const dir = join(k.info.kubeconfig, '..', '..', 'tasks', task);
  mkdirSync(join(dir, 'ws'), { recursive: true });
  return {
    steps: steps.map((s) => (typeof s === 'string' ? { run: s } : s)),
    cwd: join(dir, 'ws'),
    workspace: join(dir, 'ws'),
    env: { PATH: '/host/only/bin', HOME: '/host/home', GREETING: 'hello world', RUNFLEET_WORKSPACE: join(dir, 'ws') },
    logFile: join(dir, 'task.log'),
    sessionDir: join(dir, 'session'),
    labels: { run: 'run/main/7', task, attempt: 1, runner, pool: 'k8s' },
    image: BUSYBOX_IMAGE,
    pull: 'never',
    signal: new AbortController().signal,
    ...extra,
  };
}

function session(r: DriverRun): SessionRecord {
  return {
    labels: r.labels,
    driver: 'kubernetes',
    handle: null,
    sessionDir: r.sessionDir,
    logFile: r.logFile,
    startedAt: new Date().toISOString(),
    bootId: 'boot-1',
  };
}

const log = (r: DriverRun): string => (existsSync(r.logFile) ? readFileSync(r.logFile, 'utf8') : '');

const childScript = join(__dirname, '..', 'helpers', 'driver-child.ts');

/** A runner process stand-in running `r` on the kubernetes driver; resolves once the pod exists. */
async function runInChild(r: DriverRun): Promise<ChildProcess> {
  const { signal: _signal, onStarted: _onStarted, ...plain } = r;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', childScript, 'kubernetes', JSON.stringify(plain), k.runnerKubeconfig, k.namespace],
    { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await until('the child to create the pod', () => out.includes('"handle"'), 60_000);
  return child;
}

describe('kubernetes driver (a real cluster)', () => {
  it('runs the steps in a locked-down pod: output, failing step, env, working dir, outputs, labels; then deletes it', async () => {
    const r = req(
      [
        'echo "$GREETING from $(pwd) as $(id -u); home=${HOME:-none}; path=$PATH"',
        { name: 'fails', run: 'echo "version=1.2.3" >> "$RUNFLEET_OUTPUT"; echo K=$RUNFLEET_WORKSPACE; exit 3' },
        'echo never',
      ],
      { resources: { memory: 64 * 2 ** 20, cpu: 250 } },
    );
    r.cwd = join(r.workspace!, 'sub', 'dir');
    const outputFile = join(r.workspace!, '.runfleet-output');
    r.env['RUNFLEET_OUTPUT'] = outputFile;
    let seen: V1Pod | null = null;
    const result = await driver.run({
      ...r,
      onStarted: () => {
        void (async () => {
          seen = await until('the pod', () => pod(podName(r.labels)), 30_000);
        })();
      },
    });
    expect(result).toEqual({ exitCode: 3, failedStep: 1, aborted: false });
    const text = log(r);
    expect(text).toContain('hello world from /workspace/sub/dir as 65534; home=');
    expect(text).not.toContain('/host/only/bin');
    expect(text).toContain('K=/workspace\n');
    expect(text).toContain('==> step 2/3 (fails)');
    expect(text).not.toContain('never');
    expect(readFileSync(outputFile, 'utf8')).toBe('version=1.2.3\n');

    const p = seen as V1Pod | null;
    expect(p, 'the pod was seen while it ran').not.toBeNull();
    expect(p!.metadata!.labels).toMatchObject({
      [POD_MANAGED_LABEL]: '1',
      'runfleet.dev/task': r.labels.task,
      'runfleet.dev/attempt': '1',
      'runfleet.dev/runner': runner,
      'runfleet.dev/pool': 'k8s',
    });
    expect(p!.metadata!.annotations).toMatchObject({ 'runfleet.dev/run': 'run/main/7' });
    // The restricted Pod Security Standard, on the pod as created (the namespace enforces it too).
    const spec = p!.spec!;
    expect(spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 65534,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.containers[0]!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    // The env is in a Secret of the task's own, not in the pod's spec; both go at the end.
    expect(JSON.stringify(spec)).not.toContain('hello world');
    expect(spec.containers[0]!.envFrom).toEqual([{ secretRef: { name: podName(r.labels) } }]);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.volumes!.every((v) => v.emptyDir !== undefined)).toBe(true);
    expect(spec.containers[0]!.resources).toEqual({
      requests: { memory: String(64 * 2 ** 20), cpu: '250m' },
      limits: { memory: String(64 * 2 ** 20), cpu: '250m' },
    });
    await until('the pod deleted', async () => (await pod(podName(r.labels))) === null, 30_000);
    const secret = await k.cluster.api('GET', `/api/v1/namespaces/${k.namespace}/secrets/${podName(r.labels)}`);
    expect(secret.status, 'the env Secret deleted with the pod').toBe(404);
  });

  it('streams the log while the pod runs', async () => {
    const r = req(['echo first; sleep 4; echo second']);
    let result: DriverResult | undefined;
    const running = driver.run(r).then((x) => (result = x));
    await until('the first line in the log', () => /^first$/m.test(log(r)), 60_000);
    expect(result, 'the task was still running').toBeUndefined();
    expect(log(r)).not.toMatch(/^second$/m);
    expect(await running).toEqual({ exitCode: 0, failedStep: null, aborted: false });
    expect(log(r).match(/^first$/gm)).toHaveLength(1);
    expect(log(r).match(/^second$/gm)).toHaveLength(1);
  });

  it('an outputs file longer than the termination message carries: ignored whole, and the log says so', async () => {
    // 3,060 bytes of a blank line, then a key: cut at 3,072 bytes, its value would be cut too.
    const r = req(['printf "%3060s\\nVERSION=1.2.3-rc.1\\n" "" > "$RUNFLEET_OUTPUT"']);
    const outputFile = join(r.workspace!, '.runfleet-output');
    r.env['RUNFLEET_OUTPUT'] = outputFile;
    expect(await driver.run(r)).toEqual({ exitCode: 0, failedStep: null, aborted: false });
    expect(existsSync(outputFile), 'no outputs file from a cut message').toBe(false);
    expect(log(r)).toContain(
      "==> outputs ignored ($RUNFLEET_OUTPUT): it holds more than the 3072 bytes a pod's termination message carries",
    );
  });

  it('a container over its memory limit: exit 137, and the log says OOMKilled', async () => {
    // A shell variable of 64 MB in a 16 MiB container.
    const r = req(['x=$(head -c 67108864 /dev/zero | tr "\\0" a); echo survived ${#x}'], {
      resources: { memory: 16 * 2 ** 20 },
    });
    const result = await driver.run(r);
    expect(result, log(r)).toMatchObject({ exitCode: 137, aborted: false });
    expect(log(r)).toMatch(/^==> pod rf-[a-z0-9-]+: OOMKilled$/m);
    expect(log(r)).not.toMatch(/^survived \d+$/m);
  });

  it('a stop: TERM to the step, aborted, nothing after it, the pod deleted', async () => {
    const stop = new AbortController();
    const r = req(['echo started; sleep 60', 'echo never'], { signal: stop.signal });
    const running = driver.run(r);
    await until('the step running', () => log(r).includes('started\n'), 60_000);
    const t0 = Date.now();
    stop.abort();
    const result = await running;
    const stopMs = Date.now() - t0;
    expect(result.aborted).toBe(true);
    expect(result.exitCode).toBe(143);
    expect(result.failedStep).toBe(0);
    expect(log(r)).not.toContain('never');
    expect(stopMs).toBeLessThan(15_000);
    await until('the pod deleted', async () => (await pod(podName(r.labels))) === null, 30_000);
    console.log(`stop: the pod's task ended ${stopMs} ms after the abort`);
  });

  it('a pod no node takes: its log says why, and a stop deletes it at once', async () => {
    const nowhere = createKubernetesDriver({
      kubeconfig: k.runnerKubeconfig,
      runner,
      pool: 'k8s',
      policy: policy({ nodeSelector: { 'runfleet.dev/no-such-node': 'x' } }),
      container: DEFAULT_CONTAINER_POLICY,
    });
    const stop = new AbortController();
    const r = req(['echo never'], { signal: stop.signal });
    const running = nowhere.run(r);
    await until('the reason in the log', () => /Unschedulable: .*node affinity\/selector/.test(log(r)), 60_000);
    const t0 = Date.now();
    stop.abort();
    expect(await running).toEqual({ exitCode: 130, failedStep: 0, aborted: true });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(log(r)).not.toMatch(/^never$/m);
    await until('the pod deleted', async () => (await pod(podName(r.labels))) === null, 30_000);
  });

  it('a runner killed -9 mid-task: recover re-attaches, keeps the log whole, gives the true exit code, deletes the pod', async () => {
    const r = req(['echo one; sleep 4; echo two; exit 4']);
    const child = await runInChild(r);
    await until('the first line', () => log(r).includes('one\n'), 60_000);
    child.kill('SIGKILL');
    expect((await pod(podName(r.labels)))?.status?.phase).toBe('Running');
    const got = await driver.recover(session(r), new AbortController().signal);
    expect(got).toMatchObject({ state: 'finished', result: { exitCode: 4, failedStep: 0, aborted: false } });
    const text = log(r);
    expect(text).toContain('re-attached');
    expect(text.match(/^one$/gm)).toHaveLength(1);
    expect(text.match(/^two$/gm)).toHaveLength(1);
    await until('the pod deleted', async () => (await pod(podName(r.labels))) === null, 30_000);
  });

  it('a pod that ended while the runner was down: its outcome and the output it missed', async () => {
    const r = req(['echo early', 'sleep 2; echo late; exit 5']);
    const child = await runInChild(r);
    await until('the first line', () => log(r).includes('early\n'), 60_000);
    child.kill('SIGKILL');
    await until('the pod ended', async () => (await pod(podName(r.labels)))?.status?.phase === 'Failed', 60_000);
    const got = await driver.recover(session(r), new AbortController().signal);
    expect(got).toMatchObject({ state: 'finished', result: { exitCode: 5, failedStep: 1 } });
    expect(log(r).match(/^late$/gm)).toHaveLength(1);
    expect(log(r).match(/^early$/gm)).toHaveLength(1);
  });

  it("in a pod's place: no kubeconfig, the service account's token and CA where a pod has them (in-cluster)", async () => {
    // A runner stand-in in a mount namespace of its own, with /run (where /var/run points) a
    // tmpfs holding what the kubelet mounts into a pod: the service account's token and the CA.
    const dir = join(k.info.kubeconfig, '..', '..', 'in-cluster');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), await k.cluster.serviceAccountToken(k.namespace, 'runfleet-runner'));
    const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
    const r = req(['echo "from inside"']);
    const { signal: _signal, ...plain } = r;
    const script = [
      'set -e',
      'mount -t tmpfs tmpfs /run',
      `mkdir -p ${sa}`,
      `cp "$RF_TOKEN" ${sa}/token`,
      `cp "$RF_CA" ${sa}/ca.crt`,
      'exec "$@"',
    ].join('; ');
    const port = new URL(k.info.server).port;
    const child = spawnSync(
      'unshare',
      [
        '-m',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'sh',
        process.execPath,
        '--import',
        'tsx',
        childScript,
        'kubernetes',
        JSON.stringify(plain),
        '',
        k.namespace,
      ],
      {
        cwd: join(__dirname, '..', '..'),
        encoding: 'utf8',
        timeout: 120_000,
        env: {
          ...process.env,
          KUBECONFIG: '',
          KUBERNETES_SERVICE_HOST: '127.0.0.1',
          KUBERNETES_SERVICE_PORT: port,
          RF_TOKEN: join(dir, 'token'),
          RF_CA: k.info.caFile,
        },
      },
    );
    expect(child.status, `${child.stderr}\n${child.stdout}`).toBe(0);
    expect(child.stdout).toContain('"result":{"exitCode":0');
    expect(log(r)).toContain('from inside\n');
    // And nothing of the kind outside a pod: the driver says what it lacks.
    expect(() =>
      createKubernetesDriver({ runner, pool: 'k8s', policy: policy(), container: DEFAULT_CONTAINER_POLICY }),
    ).toThrow(/no kubeconfig .* and not running in a pod \(KUBERNETES_SERVICE_HOST is unset\)/);
  });

  it('a pod gone with no outcome recorded: vanished', async () => {
    const r = req(['true']);
    const got = await driver.recover(session(r), new AbortController().signal);
    expect(got.state).toBe('vanished');
    expect(got.state === 'vanished' && got.reason).toContain(podName(r.labels));
  });

  it("a sibling's sweep deletes the pods of a runner that is gone, and leaves the ones kept", async () => {
    const gone = req(['sleep 300'], {});
    gone.labels = { ...gone.labels, runner: `gone-${process.pid}` };
    const child = await runInChild(gone);
    child.kill('SIGKILL');
    const kept = req(['sleep 300'], {});
    kept.labels = { ...kept.labels, runner: `gone-${process.pid}` };
    const keptChild = await runInChild(kept);
    keptChild.kill('SIGKILL');
    await until('both pods exist', async () => (await pods(`runfleet.dev/runner=gone-${process.pid}`)).length === 2);
    const removed = await driver.sweep({
      runners: [`gone-${process.pid}`],
      keep: (labels) => labels.task === kept.labels.task,
    });
    expect(removed).toBe(1);
    await until('the swept pod deleted', async () => (await pod(podName(gone.labels))) === null, 30_000);
    expect(await pod(podName(kept.labels))).not.toBeNull();
    expect(await driver.sweep({ runners: [`gone-${process.pid}`], keep: () => false })).toBe(1);
    await until('the kept pod deleted too', async () => (await pod(podName(kept.labels))) === null, 30_000);
  });

  it('an image the node does not have (pull: never): TaskSpawnFailed with the reason, the pod deleted', async () => {
    const r = req(['true'], { image: 'localhost/no-such-image:1' });
    const err = await driver.run(r).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('TaskSpawnFailed');
    expect(err?.message).toContain('ErrImageNeverPull');
    await until('the pod deleted', async () => (await pod(podName(r.labels))) === null, 30_000);
  });

  it('refuses before any pod exists: a service account, a node selector, CPU or root the runner does not allow', async () => {
    const strict = createKubernetesDriver({
      kubeconfig: k.runnerKubeconfig,
      runner,
      pool: 'k8s',
      policy: policy({ nodeSelector: { 'runfleet.dev/ci': 'yes' }, serviceAccounts: ['builder'] }),
      container: { ...DEFAULT_CONTAINER_POLICY, cpu: { max: 1000 } },
    });
    const cases: [Partial<DriverRun>, string][] = [
      [{ serviceAccount: 'cluster-admin-ish' }, 'service account cluster-admin-ish'],
      [{ nodeSelector: { 'runfleet.dev/ci': 'no' } }, 'runfleet.dev/ci=no'],
      [{ resources: { cpu: 2000 } }, 'resources.cpu 2'],
      [{ runAsRoot: true }, 'root'],
    ];
    for (const [extra, named] of cases) {
      const r = req(['true'], extra);
      const err = await strict.run(r).then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code, named).toBe('TaskRefused');
      expect(err?.message).toContain(named);
      expect(await pod(podName(r.labels))).toBeNull();
    }
  });

  it('pulls a private image with the pull secret the runner names; without it the pull is refused, saying why', async () => {
    const registry = await startRegistry(projectRoot);
    try {
      const image = `${registry.host}/runfleet/busybox:k8s`;
      pushImage(projectRoot, registry, BUSYBOX_IMAGE, image);
      k.cluster.trustRegistry(registry.host);
      await k.cluster.createRegistrySecret(k.namespace, 'regcred', registry);
      const withSecret = createKubernetesDriver({
        kubeconfig: k.runnerKubeconfig,
        runner,
        pool: 'k8s',
        policy: policy({ imagePullSecrets: ['regcred'] }),
        container: DEFAULT_CONTAINER_POLICY,
      });
      const r = req(['echo "pulled and ran"'], { image, pull: 'always' });
      const t0 = Date.now();
      expect(await withSecret.run(r)).toEqual({ exitCode: 0, failedStep: null, aborted: false });
      expect(log(r)).toContain('pulled and ran');
      const pulledMs = Date.now() - t0;

      // The same image, no secret: the registry refuses the node, and the task says so.
      const refused = req(['true'], { image: `${registry.host}/runfleet/busybox:k8s`, pull: 'always' });
      const err = await driver.run(refused).then(
        () => null,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('TaskSpawnFailed');
      expect(err?.message).toMatch(/ErrImagePull|ImagePullBackOff/);
      expect(err?.message).toMatch(/401|unauthorized|authorization/i);
      await until('the pod deleted', async () => (await pod(podName(refused.labels))) === null, 30_000);
      console.log(`private pull with the runner's pull secret: task done in ${pulledMs} ms`);
    } finally {
      await registry.stop();
    }
  });

  it("the runner's credentials run pods in its namespace only; the namespace refuses a root pod", async () => {
    const elsewhere = createKubernetesDriver({
      kubeconfig: k.runnerKubeconfig,
      runner,
      pool: 'k8s',
      policy: { ...policy(), namespace: 'default' },
      container: DEFAULT_CONTAINER_POLICY,
    });
    const err = await elsewhere.run(req(['true'])).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(err?.code).toBe('TaskSpawnFailed');
    expect(err?.message).toMatch(/forbidden/i);
    expect(err?.message).toContain('namespace "default"');

    // A runner that allows root: the restricted namespace's admission still refuses the pod.
    const rooted = createKubernetesDriver({
      kubeconfig: k.runnerKubeconfig,
      runner,
      pool: 'k8s',
      policy: policy(),
      container: { ...DEFAULT_CONTAINER_POLICY, allowRoot: true },
    });
    const r = req(['id -u'], { runAsRoot: true });
    const refused = await rooted.run(r).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(refused?.code).toBe('TaskSpawnFailed');
    expect(refused?.message).toContain('violates PodSecurity "restricted');
    expect(await pod(podName(r.labels))).toBeNull();
  });
});

/** Where each runner process's own lines start in its (shared, appended) log file. */
const sinceOf = new WeakMap<Proc, number>();

/** A registered runner process offering the process and kubernetes drivers, alone in its pool. */
async function startRunner(
  prefix: string,
  opts: { temporary?: boolean; pool?: string; drivers?: string } = {},
): Promise<{ name: string; pool: string; proc: Proc; output(): string; serve(): Proc }> {
  const name = uniqueName(prefix);
  const pool = opts.pool ?? uniqueName('pool');
  const token = await registerRunner(h.client, h.controlQueue, {
    name,
    pool,
    settings: { slots: 4, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 },
    ...(opts.temporary ? { temporary: true } : {}),
  });
  const dir = join(h.dataDir, 'runners', name);
  // The runner's output goes to `<dir>/../<name>.log`, appended by every process of it.
  mkdirSync(join(dir, '..'), { recursive: true });
  const logFile = join(dir, '..', `${name}.log`);
  const serve = (withToken = false) => {
    const since = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
    const proc = startRunnerProcess({
      address: h.address,
      name,
      pool,
      dataDir: dir,
      ...(withToken ? { token } : {}),
      healthPort: 0,
      args: ['--drivers', opts.drivers ?? 'process,kubernetes'],
      env: {
        RUNFLEET_KUBECONFIG: k.runnerKubeconfig,
        RUNFLEET_KUBERNETES_NAMESPACE: k.namespace,
        RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue,
      },
    });
    sinceOf.set(proc, since);
    return proc;
  };
  const proc = serve(true);
  await ready(proc);
  return { name, pool, proc, output: () => proc.output(), serve: () => serve(false) };
}

function ready(proc: Proc): Promise<void> {
  // Its own lines only: a restarted runner appends to the log of the one before.
  const since = sinceOf.get(proc) ?? 0;
  return untilRunnerReady(() => proc.output().slice(since));
}

function podTask(pool: string, name: string, steps: string[], extra: Record<string, unknown> = {}) {
  return { name, steps, pool, driver: 'kubernetes', image: BUSYBOX_IMAGE, pull: 'never', ...extra };
}

function readLog(runId: string, task: string): Promise<string> {
  return readWholeTaskLog(rf, runId, task);
}

const podsOfRun = (runId: string) =>
  pods(`${POD_MANAGED_LABEL}=1`).then((all) =>
    all.filter((p) => p.metadata?.annotations?.['runfleet.dev/run'] === runId),
  );

describe('a registered runner with the process and kubernetes drivers', () => {
  it('advertises kubernetes; a kubernetes task lands on it only, next to a process task', async () => {
    const { name, pool } = await startRunner('k8s-run');
    // A runner of the same pool without the driver: it takes the process task at most.
    const plain = await startRunner('k8s-plain', { pool, drivers: 'process' });
    const view = await until('the live status', async () => (await admin.describe(name)).live, 60_000);
    expect([...view.drivers].sort()).toEqual(['kubernetes', 'process']);
    const started = Date.now();
    const handle = await h.start({
      name: 'mixed',
      group: '/test/kubernetes',
      tasks: [
        podTask(pool, 'in-pod', [
          'echo "hello from $RUNFLEET_TASK in $(pwd)"',
          'echo "where=pod" >> "$RUNFLEET_OUTPUT"',
        ]),
        { name: 'on-host', pool, steps: ['echo "after $RUNFLEET_NEEDS_IN_POD_WHERE"'], depends: ['in-pod'] },
      ],
    });
    const s: RunState = await handle.result();
    const tookMs = Date.now() - started;
    expect(s.result).toBe('success');
    expect(s.tasks['in-pod']).toMatchObject({
      status: 'success',
      runner: name,
      exitCode: 0,
      outputs: { where: 'pod' },
    });
    expect(await readLog(handle.workflowId, 'in-pod')).toContain('hello from in-pod in /workspace');
    expect(await readLog(handle.workflowId, 'on-host')).toContain('after pod');
    expect(plain.output()).not.toContain('in-pod');
    await until('the pod deleted', async () => (await podsOfRun(handle.workflowId)).length === 0, 30_000);
    console.log(`kubernetes + process run took ${tookMs} ms end to end`);
  }, 180_000);

  it('a task past its timeout, and a stopped run: the pod goes either way', async () => {
    const { pool } = await startRunner('k8s-kill');
    const t0 = Date.now();
    const timed = await h.start({
      name: 'timeout',
      group: '/test/kubernetes',
      tasks: [podTask(pool, 'slow', ['sleep 60'], { timeout: '3s' })],
    });
    const t = await timed.result();
    expect(t.tasks.slow).toMatchObject({ status: 'failed' });
    expect(t.tasks.slow!.reason).toContain('timed out');
    await until('the timed-out pod deleted', async () => (await podsOfRun(timed.workflowId)).length === 0, 30_000);
    const timeoutMs = Date.now() - t0;

    const stopped = await h.start({
      name: 'stop',
      group: '/test/kubernetes',
      tasks: [podTask(pool, 'long', ['sleep 60'])],
    });
    await until(
      'the pod running',
      async () => (await podsOfRun(stopped.workflowId)).some((p) => p.status?.phase === 'Running'),
      60_000,
    );
    const t1 = Date.now();
    await stopped.signal('stop', { reason: 'test over', by: 'test' });
    const s = await stopped.result();
    expect(s.result).toBe('stopped');
    expect(s.tasks.long!.status).toBe('cancelled');
    await until('the stopped pod deleted', async () => (await podsOfRun(stopped.workflowId)).length === 0, 30_000);
    console.log(
      `timeout 3s: pod gone ${timeoutMs} ms after the start; stop: pod gone ${Date.now() - t1} ms after the signal`,
    );
  }, 180_000);

  it('re-attaches after kill -9 and reports the outcome with the whole output and the outputs; one pod all along', async () => {
    const { name, pool, proc, serve } = await startRunner('k8s-back');
    const handle = await h.start(
      {
        name: 'reattach',
        group: '/test/kubernetes',
        tasks: [
          podTask(pool, 'boxed', ['echo start', 'sleep 8', 'echo "after=restart" >> "$RUNFLEET_OUTPUT"; echo done']),
        ],
      },
      { heartbeatTimeout: '3s' },
    );
    const runId = handle.workflowId;
    const uids = new Set<string>();
    const seen = await until(
      'the pod running',
      async () => (await podsOfRun(runId)).find((p) => p.status?.phase === 'Running'),
      60_000,
    );
    uids.add(seen.metadata!.uid!);
    proc.kill('SIGKILL');
    await proc.exited;
    const back = serve();
    await ready(back);
    for (const p of await podsOfRun(runId)) uids.add(p.metadata!.uid!);
    const s: RunState = await handle.result();
    // Its outputs too: written by the pod after the runner was killed, carried by its termination message.
    expect(s.tasks.boxed).toMatchObject({
      status: 'success',
      exitCode: 0,
      runner: name,
      attempts: 1,
      outputs: { after: 'restart' },
    });
    const text = await readLog(runId, 'boxed');
    expect(text.match(/^start$/gm)).toHaveLength(1);
    expect(text.match(/^done$/gm)).toHaveLength(1);
    expect(back.output()).toMatch(/recovering 1 task\(s\)/);
    expect(uids.size).toBe(1);
    await until('the pod deleted', async () => (await podsOfRun(runId)).length === 0, 30_000);
  }, 180_000);

  it('a temporary runner that vanished: purged, and a runner of its pool deletes the pod it left', async () => {
    const temp = await startRunner('k8s-temp', { temporary: true });
    const handle = await h.start(
      { name: 'left', group: '/test/kubernetes', tasks: [podTask(temp.pool, 'orphan', ['sleep 300'])] },
      { heartbeatTimeout: '3s' },
    );
    await until(
      'the pod running',
      async () => (await podsOfRun(handle.workflowId)).some((p) => p.status?.phase === 'Running'),
      60_000,
    );
    temp.proc.kill('SIGKILL');
    await temp.proc.exited;
    await until(
      'the temporary runner purged',
      async () => (await admin.get(temp.name).catch(() => null))?.status === 'deleted',
      90_000,
    );
    const s = await h.waitFor(handle, (st) => st.tasks.orphan?.status === 'failed', 60_000);
    expect(s.tasks.orphan!.reason).toContain(`runner "${temp.name}" was purged`);
    expect(await podsOfRun(handle.workflowId)).toHaveLength(1);
    const peer = await startRunner('k8s-peer', { pool: temp.pool });
    await until('the orphan pod deleted', async () => (await podsOfRun(handle.workflowId)).length === 0, 60_000);
    await until(
      'the peer says so',
      () => /removed 1 task\(s\) that purged runners of this pool left behind/.test(peer.output()),
      60_000,
    );
  }, 240_000);
});

describe("Runfleet's image as a runner pod", () => {
  it('serves the kubernetes driver from a pod with the in-cluster credentials the kubelet mounts; a run succeeds', async () => {
    // The image of this checkout (test/helpers/image.ts), into the node's containerd.
    const t0 = Date.now();
    const built = await buildRunfleetImage({ projectRoot, log: (line) => process.stderr.write(`image: ${line}\n`) });
    const archive = join(h.dataDir, 'runfleet-image.tar');
    const saved = spawnSync('podman', ['save', '--format', 'docker-archive', '-o', archive, built.tag], {
      encoding: 'utf8',
      env: podmanEnv(podmanConfFile(projectRoot)),
    });
    expect(saved.status, saved.stderr).toBe(0);
    await k.cluster.importImage(archive);
    const imported = Date.now();

    // The runner's own namespace and service account, bound to the runner Role where tasks run.
    const system = 'runfleet-system';
    const account = 'runner';
    await k.cluster.createNamespace(system);
    const created = (r: { status: number; body: unknown }) =>
      expect([201, 409], JSON.stringify(r.body)).toContain(r.status);
    created(
      await k.cluster.api('POST', `/api/v1/namespaces/${system}/serviceaccounts`, { metadata: { name: account } }),
    );
    // What the controller manager (not run here) publishes in each namespace: the CA a pod's token volume carries.
    created(
      await k.cluster.api('POST', `/api/v1/namespaces/${system}/configmaps`, {
        metadata: { name: 'kube-root-ca.crt' },
        data: { 'ca.crt': readFileSync(k.info.caFile, 'utf8') },
      }),
    );
    created(
      await k.cluster.api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${k.namespace}/rolebindings`, {
        metadata: { name: `${system}-${account}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'runfleet-runner' },
        subjects: [{ kind: 'ServiceAccount', name: account, namespace: system }],
      }),
    );

    const name = uniqueName('k8s-pod');
    const pool = uniqueName('pool');
    const token = await registerRunner(h.client, h.controlQueue, {
      name,
      pool,
      settings: { slots: 2, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 },
    });
    created(
      await k.cluster.api('POST', `/api/v1/namespaces/${system}/secrets`, {
        metadata: { name },
        stringData: { RUNFLEET_RUNNER_TOKEN: token },
      }),
    );
    const apiPort = new URL(k.info.server).port;
    const podName = name.replace(/[^a-z0-9-]/g, '-');
    created(
      await k.cluster.api('POST', `/api/v1/namespaces/${system}/pods`, {
        metadata: { name: podName },
        spec: {
          serviceAccountName: account,
          // This one-node cluster has no kube-proxy, and Temporal and the API server listen on
          // loopback: the pod shares the node's network. Its credentials are still the pod's own.
          hostNetwork: true,
          restartPolicy: 'Never',
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
          volumes: [{ name: 'home', emptyDir: {} }],
          containers: [
            {
              name: 'runner',
              image: built.tag,
              imagePullPolicy: 'Never',
              command: [
                'node',
                'bin/runfleet',
                'runner',
                'serve',
                '--name',
                name,
                '--pool',
                pool,
                '--drivers',
                'kubernetes',
              ],
              env: [
                { name: 'TEMPORAL_ADDRESS', value: h.address },
                { name: 'RUNFLEET_CONTROL_TASK_QUEUE', value: h.controlQueue },
                { name: 'RUNFLEET_KUBERNETES_NAMESPACE', value: k.namespace },
                { name: 'RUNFLEET_ALLOW_PLAINTEXT', value: '1' },
                // Where the kubernetes service would be, had the node a kube-proxy.
                { name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' },
                { name: 'KUBERNETES_SERVICE_PORT', value: apiPort },
              ],
              envFrom: [{ secretRef: { name } }],
              volumeMounts: [{ name: 'home', mountPath: '/home/node/.runfleet' }],
              securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      }),
    );
    const podLog = async () =>
      String((await k.cluster.api('GET', `/api/v1/namespaces/${system}/pods/${podName}/log`)).body).slice(-3000);
    try {
      await until('the runner pod serving', async () => (await admin.describe(name)).live, {
        timeoutMs: 120_000,
        everyMs: 1_000,
      }).catch(async (err: Error) => {
        const status = (await k.cluster.api('GET', `/api/v1/namespaces/${system}/pods/${podName}`)).body as V1Pod;
        throw new Error(`${err.message}\npod: ${JSON.stringify(status.status)}\nlog:\n${await podLog()}`);
      });
      const ready = Date.now();
      const handle = await h.start({
        name: 'from a runner pod',
        group: '/test/kubernetes',
        tasks: [podTask(pool, 'hello', ['echo "hello from $RUNFLEET_RUNNER"'])],
      });
      const s: RunState = await handle.result();
      expect(s.result, `${JSON.stringify(s.tasks)}\n${await podLog()}`).toBe('success');
      expect(s.tasks['hello']).toMatchObject({ status: 'success', runner: name, exitCode: 0 });
      expect(await readLog(handle.workflowId, 'hello')).toContain(`hello from ${name}`);
      console.log(
        `runner pod: image built, saved and imported in ${imported - t0} ms; serving ${ready - imported} ms after; the run took ${Date.now() - ready} ms`,
      );
      // No kubeconfig in the image or the pod: the runner used the token the kubelet mounted.
      const runnerPod = (await k.cluster.api('GET', `/api/v1/namespaces/${system}/pods/${podName}`)).body as V1Pod;
      expect(JSON.stringify(runnerPod.spec?.containers[0]?.env)).not.toContain('KUBECONFIG');
      expect(runnerPod.spec?.volumes?.some((v) => v.name.startsWith('kube-api-access-'))).toBe(true);
    } finally {
      await k.cluster.api('DELETE', `/api/v1/namespaces/${system}/pods/${podName}?gracePeriodSeconds=0`);
    }
  }, 600_000);
});
