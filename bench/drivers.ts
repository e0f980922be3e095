/**
 * `npx tsx bench/drivers.ts [--n 20]`: what one task costs on each driver, on this machine, in
 * one invocation. The process driver is the baseline; the docker driver runs on a Podman service
 * and the kubernetes driver on a real one-node Kubernetes (both started here, as the tests start
 * them). Each round runs one task `true` on each driver, the order rotating from round to round,
 * sequentially (a task's whole life: files, container or pod, outcome, clean-up). Then the pod
 * start latency alone: the driver's pod created, and its container seen running (polled every
 * 20 ms), N times. Prints the tables and writes `.bench/drivers-<timestamp>.json`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONTAINER_POLICY } from '../src/runner/docker-driver';
import { createDockerDriver } from '../src/runner/docker-driver';
import type { Driver, DriverRun } from '../src/runner/driver';
import { createKubernetesDriver, podName, podSpec } from '../src/runner/kubernetes-driver';
import { createProcessDriver } from '../src/runner/process-driver';
import { sleep } from '../src/sleep';
import { startTestKubernetes } from '../test/helpers/kubernetes-setup';
import { BUSYBOX_IMAGE, startTestPodman } from '../test/helpers/podman';
import { formatLoad, loadAvg } from './cpu';
import { formatTable, mean, percentile } from './stats';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a whole number of at least 1`);
  return v;
}

async function main(): Promise<void> {
  const n = arg('n', 20);
  const root = join(__dirname, '..', '.bench', `drivers-${process.pid}`);
  mkdirSync(root, { recursive: true });
  const loadBefore = loadAvg();
  process.stderr.write(`load average before: ${formatLoad(loadBefore)}\n`);
  const podman = await startTestPodman();
  const k = await startTestKubernetes('runfleet-bench');
  try {
    const runner = `bench-${process.pid}`;
    const drivers: Record<string, Driver> = {
      process: createProcessDriver({ sessionsDir: join(root, 'sessions') }),
      docker: createDockerDriver({ socketPath: podman.socketPath, runner, pool: 'bench' }),
      kubernetes: createKubernetesDriver({
        kubeconfig: k.runnerKubeconfig,
        runner,
        pool: 'bench',
        policy: { namespace: k.namespace, nodeSelector: {}, serviceAccounts: [], imagePullSecrets: [] },
        container: DEFAULT_CONTAINER_POLICY,
      }),
    };
    const names = Object.keys(drivers);
    let seq = 0;
    const req = (driver: string): DriverRun => {
      const task = `t${++seq}`;
      const dir = join(root, driver, task);
      mkdirSync(join(dir, 'ws'), { recursive: true });
      return {
        steps: [{ run: 'true' }],
        cwd: join(dir, 'ws'),
        workspace: join(dir, 'ws'),
        env: {},
        logFile: join(dir, 'task.log'),
        sessionDir: join(dir, 'session'),
        labels: { run: 'run/bench/1', task, attempt: 1, runner, pool: 'bench' },
        ...(driver === 'process' ? {} : { image: BUSYBOX_IMAGE, pull: 'never' as const }),
        signal: new AbortController().signal,
      };
    };
    // One warm-up task each (first container, first pod, module loading): not recorded.
    for (const name of names) await drivers[name]!.run(req(name));
    const times: Record<string, number[]> = Object.fromEntries(names.map((d) => [d, []]));
    for (let round = 0; round < n; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const name of order) {
        const t0 = performance.now();
        const result = await drivers[name]!.run(req(name));
        times[name]!.push(performance.now() - t0);
        if (result.exitCode !== 0) throw new Error(`${name}: task failed with ${result.exitCode}`);
      }
      process.stderr.write(`round ${round + 1}/${n}\r`);
    }

    // Pod start latency: the driver's own pod, created; its container seen running.
    const { CoreV1Api, KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(k.info.kubeconfig);
    const api = kc.makeApiClient(CoreV1Api);
    const starts: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = req('kubernetes');
      r.steps = [{ run: 'sleep 30' }];
      const body = podSpec(
        r,
        {
          policy: { namespace: k.namespace, nodeSelector: {}, serviceAccounts: [], imagePullSecrets: [] },
          container: DEFAULT_CONTAINER_POLICY,
        },
        k.namespace,
      );
      const name = podName(r.labels);
      const t0 = performance.now();
      await api.createNamespacedPod({ namespace: k.namespace, body });
      for (;;) {
        const pod = await api.readNamespacedPod({ name, namespace: k.namespace });
        if (pod.status?.containerStatuses?.[0]?.state?.running) break;
        await sleep(20);
      }
      starts.push(performance.now() - t0);
      await api.deleteNamespacedPod({ name, namespace: k.namespace, gracePeriodSeconds: 0 });
    }
    const loadAfter = loadAvg();

    const base = percentile(times['process']!, 50);
    const rows = names.map((d) => {
      const t = times[d]!;
      const p50 = percentile(t, 50);
      return [d, String(n), p50.toFixed(0), percentile(t, 95).toFixed(0), mean(t).toFixed(0), (p50 / base).toFixed(1)];
    });
    console.log(`\nOne task \`true\`, start to outcome and clean-up (ms), ${n} rounds, order rotating:`);
    console.log(formatTable(['driver', 'n', 'p50', 'p95', 'mean', 'p50 / process'], rows));
    console.log(`\nPod start (create -> container running, ms), ${n} pods:`);
    console.log(
      formatTable(
        ['n', 'p50', 'p95', 'min', 'max'],
        [
          [
            String(n),
            percentile(starts, 50).toFixed(0),
            percentile(starts, 95).toFixed(0),
            Math.min(...starts).toFixed(0),
            Math.max(...starts).toFixed(0),
          ],
        ],
      ),
    );
    console.log(
      `\nKubernetes node Ready ${k.startMs} ms after start; load average ${formatLoad(loadBefore)} -> ${formatLoad(loadAfter)}`,
    );
    const out = join(__dirname, '..', '.bench', `drivers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      out,
      JSON.stringify({ n, times, podStarts: starts, nodeReadyMs: k.startMs, loadBefore, loadAfter }, null, 2),
    );
    console.log(`wrote ${out}`);
  } finally {
    await k.cluster.stop();
    await podman.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
