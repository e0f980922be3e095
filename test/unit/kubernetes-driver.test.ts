/**
 * The kubernetes driver's pure parts: the pod it makes from a task and the runner's policy (the
 * restricted security context, limits, node selector and service account rules, `$` kept from
 * Kubernetes' own expansion, names and labels for any run id), the termination message, its
 * configuration and the run spec's fields for it. The driver against a real cluster is in
 * test/integration/kubernetes.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { driverList } from '../../src/cli/args';
import { loadConfig } from '../../src/config';
import { DEFAULT_CONTAINER_POLICY } from '../../src/runner/docker-driver';
import type { DriverRun } from '../../src/runner/driver';
import {
  createKubernetesDriver,
  defaultNamespace,
  endReason,
  envSecret,
  parseTerminationMessage,
  podLabels,
  podName,
  podSpec,
  type KubernetesPolicy,
} from '../../src/runner/kubernetes-driver';
import { kubernetesSettings } from '../../src/runner/local-config';
import { checkRunSpec, validateRunSpec } from '../../src/spec/validate';
import { refusal } from '../helpers/refusal';

const labels = { run: 'run/main/42', task: 'build', attempt: 1, runner: 'k8s-1', pool: 'linux' };
const policy: KubernetesPolicy = {
  namespace: 'runfleet-linux',
  nodeSelector: { 'runfleet.dev/ci': 'yes' },
  serviceAccounts: ['builder'],
  imagePullSecrets: ['regcred'],
};
const opts = { policy, container: DEFAULT_CONTAINER_POLICY };

function task(extra: Partial<DriverRun> = {}): Parameters<typeof podSpec>[0] {
  return {
    steps: [{ run: 'echo "$HOME $(id -u)" $(VAR)' }],
    cwd: '/state/ws/sub',
    workspace: '/state/ws',
    env: {
      PATH: '/usr/bin',
      FOO: 'a$(BAR)b$$c',
      RUNFLEET_WORKSPACE: '/state/ws',
      RUNFLEET_OUTPUT: '/state/ws/.runfleet-output',
    },
    labels,
    image: 'busybox:1',
    ...extra,
  };
}

describe('the pod of a task', () => {
  it('is locked down as the restricted Pod Security Standard asks, with no token and no host path', () => {
    const pod = podSpec(task(), opts, 'runfleet-linux');
    const spec = pod.spec!;
    expect(spec.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65534,
      runAsGroup: 65534,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const c = spec.containers[0]!;
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      runAsNonRoot: true,
    });
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.serviceAccountName).toBeUndefined();
    expect(spec.enableServiceLinks).toBe(false);
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.volumes!.map((v) => Object.keys(v).sort())).toEqual([
      ['emptyDir', 'name'],
      ['emptyDir', 'name'],
    ]);
    expect(spec.nodeSelector).toEqual({ 'runfleet.dev/ci': 'yes' });
    expect(spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
    expect(c.imagePullPolicy).toBe('IfNotPresent');
    // Memory from the runner's default, as request and limit; no CPU unless someone names it.
    expect(c.resources).toEqual({
      requests: { memory: String(2 * 2 ** 30) },
      limits: { memory: String(2 * 2 ** 30) },
    });
  });

  it("keeps every $ from Kubernetes' $(VAR) expansion; the env in a Secret, with the workspace paths mapped", () => {
    const pod = podSpec(task(), opts, 'runfleet-linux');
    const c = pod.spec!.containers[0]!;
    const script = c.command![2]!;
    // Kubernetes reads `$$` as `$`: after its expansion the shell gets the step as written.
    const expanded = script.replace(/\$\$/g, '$');
    expect(expanded).toContain(`'echo "$HOME $(id -u)" $(VAR)'`);
    expect(script).not.toMatch(/(^|[^$])\$[^$]/);
    // The env is not in the pod's spec: a Secret of the task's own, read through envFrom (which
    // Kubernetes does not expand), named and labelled as the pod.
    expect(c.env).toBeUndefined();
    expect(c.envFrom).toEqual([{ secretRef: { name: podName(labels) } }]);
    const secret = envSecret(task(), 'runfleet-linux');
    expect(secret.metadata).toMatchObject({
      name: podName(labels),
      namespace: 'runfleet-linux',
      labels: podLabels(labels),
    });
    const env = secret.stringData!;
    expect(env['FOO']).toBe('a$(BAR)b$$c');
    expect(env['PATH']).toBeUndefined();
    expect(env['RUNFLEET_WORKSPACE']).toBe('/workspace');
    expect(env['RUNFLEET_OUTPUT']).toBe('/workspace/.runfleet-output');
    expect(expanded).toContain(`mkdir -p '/workspace/sub' && cd '/workspace/sub'`);
    expect(c.command!.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(c.terminationMessagePath).toBe('/dev/termination-log');
  });

  /** A pod's script run as its container would run it (PID 1), the pod's paths pointed into `dir`. */
  function runAsPod(
    steps: DriverRun['steps'],
    dir: string,
  ): { status: number | null; stdout: string; stderr: string; message: string } {
    const script = podSpec(task({ steps }), opts, 'ns')
      .spec!.containers[0]!.command![2]!.replace(/\$\$/g, '$')
      .replaceAll("'/workspace/sub'", `'${dir}'`)
      .replaceAll('/dev/termination-log', join(dir, 'term'))
      .replaceAll('/workspace/.runfleet-output', join(dir, 'out'));
    const r = spawnSync('unshare', ['-fp', '--mount-proc', '/bin/sh', '-c', script, join(dir, 'task.sh')], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', OUT: join(dir, 'out') },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, message: readFileSync(join(dir, 'term'), 'utf8') };
  }

  it('the script runs in a shell as PID 1 would: outcome and outputs in the termination message', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rf-pod-'));
    const r = runAsPod([{ run: 'echo k=v > "$OUT"; echo one' }, { run: 'exit 7' }], dir);
    expect(r.status, r.stderr).toBe(7);
    expect(r.stdout).toContain('one\n');
    expect(parseTerminationMessage(r.message)).toEqual({ failedStep: 1, outputs: 'k=v\n', outputsCut: false });

    // An outputs file past what the message carries: cut one byte past it, so the cut shows.
    const r2 = runAsPod([{ run: 'printf "%04000d\\nK=v\\n" 0 > "$OUT"' }], dir);
    expect(r2.status, r2.stderr).toBe(0);
    expect(Buffer.byteLength(r2.message)).toBeLessThanOrEqual(4096);
    expect(parseTerminationMessage(r2.message)).toEqual({ failedStep: null, outputs: '', outputsCut: true });
  });

  it("takes the task's limits, node labels and service account only within what the runner allows", () => {
    const pod = podSpec(
      task({ resources: { memory: 2 ** 30, cpu: 1500 }, nodeSelector: { disk: 'ssd' }, serviceAccount: 'builder' }),
      opts,
      'ns',
    );
    const spec = pod.spec!;
    expect(spec.containers[0]!.resources!.limits).toEqual({ memory: String(2 ** 30), cpu: '1500m' });
    expect(spec.nodeSelector).toEqual({ 'runfleet.dev/ci': 'yes', disk: 'ssd' });
    expect(spec.serviceAccountName).toBe('builder');
    expect(spec.automountServiceAccountToken).toBe(true);
    expect(podSpec(task({ pull: 'never' }), opts, 'ns').spec!.containers[0]!.imagePullPolicy).toBe('Never');
    expect(podSpec(task({ pull: 'always' }), opts, 'ns').spec!.containers[0]!.imagePullPolicy).toBe('Always');

    const cases: [Partial<DriverRun>, string][] = [
      [{ serviceAccount: 'default' }, 'service account default; runner "k8s-1" allows builder'],
      [{ nodeSelector: { 'runfleet.dev/ci': 'no' } }, 'runs its pods on runfleet.dev/ci=yes'],
      [{ resources: { memory: 64 * 2 ** 30 } }, 'resources.memory 64Gi'],
      [{ resources: { cpu: 32_000 } }, 'resources.cpu 32'],
      [{ runAsRoot: true }, 'does not allow it (runner.allowRoot)'],
    ];
    for (const [extra, named] of cases) {
      const err = refusal(() => podSpec(task(extra), opts, 'ns'));
      expect(err.code).toBe('TaskRefused');
      expect(err.message).toContain(named);
    }
    // The pids of a task do not reach a pod (the spec refuses them; a runner ignores them).
    expect(
      podSpec(task({ resources: { pids: 10 } }), opts, 'ns').spec!.containers[0]!.resources!.limits,
    ).not.toHaveProperty('pids');
  });

  it('sets a deadline past the task timeout, for when the runner is gone for good', () => {
    const pod = podSpec(task({ deadline: Date.now() + 600_000 }), opts, 'ns');
    expect(pod.spec!.activeDeadlineSeconds).toBeGreaterThanOrEqual(600 + 59);
    expect(pod.spec!.activeDeadlineSeconds).toBeLessThanOrEqual(600 + 61);
  });

  it('is named and labelled from the task identity, whatever characters the ids hold', () => {
    const odd = { run: 'run/a b/ü:1', task: 'Build_All.x', attempt: 3, runner: 'r_1', pool: 'p.q' };
    const name = podName(odd);
    expect(name).toMatch(/^rf-build-all-x-[0-9a-f]{16}$/);
    expect(podName(odd)).toBe(name);
    expect(podName({ ...odd, attempt: 4 })).not.toBe(name);
    expect(podName({ ...odd, runner: 'r_2' })).not.toBe(name);
    const l = podLabels(odd);
    for (const value of Object.values(l)) expect(value).toMatch(/^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/);
    expect(l['runfleet.dev/run']).toMatch(/^h-[0-9a-f]{32}$/);
    expect(l['runfleet.dev/task']).toBe('Build_All.x');
    expect(podName({ ...odd, task: '___' })).toMatch(/^rf-[0-9a-f]{16}$/);
    expect(defaultNamespace('Linux_ARM')).toBe('runfleet-linux-arm');
  });
});

describe('what the cluster says ended a pod', () => {
  const ended = (status: V1Pod['status']): V1Pod => ({ status });
  const container = (exitCode: number, reason: string) => [
    {
      name: 'task',
      image: 'i',
      imageID: '',
      ready: false,
      restartCount: 0,
      state: { terminated: { exitCode, reason, message: '{"exitCode":137}' } },
    },
  ];
  it('names the memory limit, an eviction and a deadline; says nothing of an ordinary exit or a stop', () => {
    expect(endReason(ended({ phase: 'Failed', containerStatuses: container(137, 'OOMKilled') }), false)).toBe(
      'OOMKilled',
    );
    expect(
      endReason(ended({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }), false),
    ).toBe('Evicted: The node was low on resource: memory.');
    expect(
      endReason(
        ended({ phase: 'Failed', reason: 'DeadlineExceeded', containerStatuses: container(137, 'Error') }),
        false,
      ),
    ).toBe('DeadlineExceeded');
    // The runner's own stop goes through the deadline: not news.
    expect(endReason(ended({ phase: 'Failed', reason: 'DeadlineExceeded' }), true)).toBeNull();
    expect(endReason(ended({ phase: 'Failed', containerStatuses: container(3, 'Error') }), false)).toBeNull();
    expect(endReason(ended({ phase: 'Succeeded', containerStatuses: container(0, 'Completed') }), false)).toBeNull();
  });
});

describe('the termination message', () => {
  it('gives the failed step and the outputs; a forged or broken one gives nothing to trust', () => {
    const none = { outputs: '', outputsCut: false };
    expect(parseTerminationMessage('{"exitCode":3,"failedStep":2}\nA=1\nB=2\n')).toEqual({
      failedStep: 2,
      outputs: 'A=1\nB=2\n',
      outputsCut: false,
    });
    expect(parseTerminationMessage('{"exitCode":0,"failedStep":null}\n')).toEqual({ failedStep: null, ...none });
    expect(parseTerminationMessage('{"failedStep":-1}')).toEqual({ failedStep: null, ...none });
    expect(parseTerminationMessage('{"failedStep":"x"}')).toEqual({ failedStep: null, ...none });
    // A file cut to fit (the script keeps one byte past the most): no line of it is trusted.
    const full = `${'x'.repeat(3067)}\nA=1\n`; // 3072 bytes: all of it carried
    expect(parseTerminationMessage(`{"failedStep":null}\n${full}`)?.outputsCut).toBe(false);
    expect(parseTerminationMessage(`{"failedStep":null}\n${full}A`)).toEqual({
      failedStep: null,
      outputs: '',
      outputsCut: true,
    });
    expect(parseTerminationMessage('not json\nA=1')).toBeNull();
    expect(parseTerminationMessage(undefined)).toBeNull();
  });
});

describe("the driver's configuration", () => {
  it('needs a kubeconfig or a pod to run in, and says which', () => {
    const err = refusal(() =>
      createKubernetesDriver({
        kubeconfig: '/no/such/kubeconfig',
        runner: 'r',
        pool: 'p',
        policy,
        container: DEFAULT_CONTAINER_POLICY,
      }),
    );
    expect(err.code).toBe('DriverUnavailable');
    expect(err.message).toContain('/no/such/kubeconfig does not exist');
    const dir = mkdtempSync(join(tmpdir(), 'rf-kc-'));
    writeFileSync(join(dir, 'bad'), 'apiVersion: v1\nkind: Config\nclusters: {{{');
    expect(
      refusal(() =>
        createKubernetesDriver({
          kubeconfig: join(dir, 'bad'),
          runner: 'r',
          pool: 'p',
          policy,
          container: DEFAULT_CONTAINER_POLICY,
        }),
      ).message,
    ).toContain('cannot be read');
  });

  it('comes from runner.kubernetes, RUNFLEET_KUBECONFIG or KUBECONFIG, with safe defaults', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'rf-k8s-config-'));
    const defaults = kubernetesSettings(loadConfig({ cwd, env: {} }).runner, {});
    expect(defaults).toEqual({
      policy: { namespace: 'runfleet-default', nodeSelector: {}, serviceAccounts: [], imagePullSecrets: [] },
    });
    expect(kubernetesSettings(loadConfig({ cwd, env: {} }).runner, { KUBECONFIG: '/k/config' }).kubeconfig).toBe(
      '/k/config',
    );
    const env = { RUNFLEET_KUBECONFIG: '/etc/rf/kube', RUNFLEET_KUBERNETES_NAMESPACE: 'ci-pods' };
    const fromEnv = kubernetesSettings(loadConfig({ cwd, env }).runner, { KUBECONFIG: '/k/config' });
    expect(fromEnv.kubeconfig).toBe('/etc/rf/kube');
    expect(fromEnv.policy.namespace).toBe('ci-pods');
    const file = join(cwd, 'config.yaml');
    writeFileSync(
      file,
      'runner:\n  kubernetes:\n    nodeSelector: {"kubernetes.io/arch": amd64}\n    serviceAccount: tasks\n    serviceAccounts: [tasks, deployer]\n',
    );
    const fromFile = kubernetesSettings(loadConfig({ cwd, env: {}, configFile: file }).runner, {});
    expect(fromFile.policy).toMatchObject({
      nodeSelector: { 'kubernetes.io/arch': 'amd64' },
      serviceAccount: 'tasks',
      serviceAccounts: ['tasks', 'deployer'],
    });
  });

  it('refuses a bad namespace, node label or service account, naming the key', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'rf-k8s-config-'));
    expect(() => loadConfig({ cwd, env: { RUNFLEET_KUBERNETES_NAMESPACE: 'Not_A_Name' } })).toThrow(
      /RUNFLEET_KUBERNETES_NAMESPACE.*Kubernetes name/,
    );
    const file = join(cwd, 'config.yaml');
    writeFileSync(file, 'runner:\n  kubernetes:\n    nodeSelector: {"bad key!": x}\n');
    expect(() => loadConfig({ cwd, env: {}, configFile: file })).toThrow(/runner\.kubernetes\.nodeSelector/);
    writeFileSync(file, 'runner:\n  kubernetes:\n    serviceAccounts: [Admin]\n');
    expect(() => loadConfig({ cwd, env: {}, configFile: file })).toThrow(/runner\.kubernetes\.serviceAccounts/);
    writeFileSync(file, 'runner:\n  containerCpu: lots\n');
    expect(() => loadConfig({ cwd, env: {}, configFile: file })).toThrow(/runner\.containerCpu.*CPU amount/);
  });

  it('--drivers takes known drivers only', () => {
    expect(driverList('process, kubernetes,process')).toEqual(['process', 'kubernetes']);
    expect(() => driverList('process,podman')).toThrow(
      'unknown driver "podman": each is one of process, docker, kubernetes',
    );
    expect(() => driverList(',')).toThrow('no driver named');
  });
});

describe('a kubernetes task in a run file', () => {
  const base = { name: 'r', tasks: [] as unknown[] };
  const problems = (t: Record<string, unknown>): string[] => {
    const result = checkRunSpec({
      ...base,
      tasks: [{ name: 't', steps: ['true'], driver: 'kubernetes', image: 'busybox', ...t }],
    });
    return result.ok ? [] : result.problems.map((p) => `${p.path}: ${p.message}`);
  };

  it('takes an image, a pull policy, cpu and memory, a node selector and a service account', () => {
    const spec = validateRunSpec({
      ...base,
      tasks: [
        {
          name: 't',
          steps: ['true'],
          driver: 'kubernetes',
          image: 'busybox',
          pull: 'always',
          resources: { cpu: '500m', memory: '1Gi' },
          node_selector: { 'kubernetes.io/arch': 'amd64' },
          service_account: 'builder',
        },
      ],
    });
    expect(spec.tasks[0]).toMatchObject({
      driver: 'kubernetes',
      resources: { cpu: 500, memory: 2 ** 30 },
      node_selector: { 'kubernetes.io/arch': 'amd64' },
      service_account: 'builder',
    });
  });

  it('refuses what a pod cannot have, naming the field', () => {
    expect(problems({ image: undefined })).toEqual(['tasks.t.image: the kubernetes driver needs an image']);
    expect(problems({ resources: { pids: 100 } })[0]).toContain(
      'tasks.t.resources.pids: the kubernetes driver cannot set',
    );
    expect(problems({ artifacts: ['out/**'] })[0]).toContain('tasks.t.artifacts: artifacts is not carried to a pod');
    expect(problems({ cache: { key: 'k', paths: ['x'] } })[0]).toContain('tasks.t.cache');
    expect(problems({ service_account: 'Admin!' })[0]).toContain('tasks.t.service_account: must be a Kubernetes name');
    expect(problems({ node_selector: { 'a b': 'x' } })[0]).toContain('tasks.t.node_selector');
    expect(problems({ resources: { cpu: 'lots' } })[0]).toContain('tasks.t.resources.cpu: "lots" is not a CPU amount');
    expect(problems({ driver: 'docker', node_selector: { a: 'b' } })).toEqual([
      'tasks.t.node_selector: node_selector is only for the kubernetes driver',
    ]);
  });
});
