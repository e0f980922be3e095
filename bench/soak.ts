/**
 * Soak: Runfleet on Temporal as a service (four processes on PostgreSQL, src/server/cluster.ts)
 * with control workers and runners on hosts of their own (network namespaces joined by veth
 * links, test/helpers/netns.ts), under random partitions and kill -9s, for a long while.
 *
 *   sudo npx tsx bench/soak.ts                              # 2,000 runs over 30 minutes
 *   npx tsx bench/soak.ts --runs 100 --minutes 3 --fault-every 20
 *
 * Options: --runs 2000  --minutes 30  --controls 3  --runners 6  --slots 4
 *          --fault-every 45 (s between faults; 0: none)  --drain 15 (minutes to wait for the last runs)
 *
 * Each run is a small DAG (a, then b and c) of non-idempotent tasks on one pool; every task appends
 * its name to the run's own file, so a task that ran twice shows. Runs are started at an even rate
 * over the window. One fault at a time, picked at random: a runner's link cut for 15–30 s (longer
 * than the 10 s heartbeat timeout: its task is lost, then found), a control worker's link cut for
 * 10–20 s, a runner killed -9 and started again 5 s later, a control worker killed -9 and started
 * again 3 s later.
 *
 * Prints: runs finished (and their results), tasks run twice, tasks lost for ever (still `lost`
 * when their run ended), p50 / p95 run latency (the server's start to close), and the peak RSS of
 * each process class (Temporal's four services, PostgreSQL's processes together, control
 * workers, runners). Needs root (network namespaces).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { RunnerAdmin } from '../src/client/runners';
import { createDataConverter } from '../src/codec';
import { runWorkflowId } from '../src/ids';
import { Cluster, SERVICES } from '../src/server/cluster';
import type { RunState } from '../src/types';
import { createTestHost, type TestHost } from '../test/helpers/netns';
import { sharedDir, sharedFile } from '../test/helpers/shared-files';
import { BenchChild } from './children';
import { percentile, formatTable } from './stats';
import {
  BENCH_OPERATOR,
  NAMESPACE,
  PROJECT_ROOT,
  READY_TIMEOUT_MS,
  RUNFLEET_BIN,
  childEnv,
  machineInfo,
  resultsFile,
  sleep,
  unique,
} from './topology';

interface Args {
  runs: number;
  minutes: number;
  controls: number;
  runners: number;
  slots: number;
  faultEverySec: number;
  drainMinutes: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    runs: 2000,
    minutes: 30,
    controls: 3,
    runners: 6,
    slots: 4,
    faultEverySec: 45,
    drainMinutes: 15,
  };
  const keys: Record<string, keyof Args> = {
    '--runs': 'runs',
    '--minutes': 'minutes',
    '--controls': 'controls',
    '--runners': 'runners',
    '--slots': 'slots',
    '--fault-every': 'faultEverySec',
    '--drain': 'drainMinutes',
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] as string).split('=', 2) as [string, string | undefined];
    if (flag === '--help' || flag === '-h') {
      console.log(
        'usage: tsx bench/soak.ts [--runs 2000] [--minutes 30] [--controls 3] [--runners 6] [--slots 4] [--fault-every 45] [--drain 15]',
      );
      process.exit(0);
    }
    const key = keys[flag];
    if (key === undefined) throw new Error(`unknown argument ${flag}`);
    const raw = inline ?? argv[++i];
    const value = Number(raw);
    const min = key === 'faultEverySec' ? 0 : 1;
    if (!Number.isFinite(value) || value < min)
      throw new Error(`${flag} takes a number >= ${min}, got ${JSON.stringify(raw)}`);
    args[key] = value;
  }
  return args;
}

/** A process on a host of its own, restartable after a kill. */
interface Member {
  role: 'control' | 'runner';
  name: string;
  host: TestHost;
  child: BenchChild;
  start(): BenchChild;
  peakBytes: number;
}

const log = (line: string): void => console.error(`${new Date().toISOString().slice(11, 19)} soak: ${line}`);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const between = (lo: number, hi: number): number => lo + Math.random() * (hi - lo);

function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** pids of `pid`'s children (PostgreSQL's backends), from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the soak puts its workers in network namespaces: run it as root');
  const cluster = new Cluster({
    projectRoot: PROJECT_ROOT,
    stateDir: join(PROJECT_ROOT, '.bench', 'soak-cluster'),
    port: 0,
    pgPort: 0,
    namespace: NAMESPACE,
    log,
  });
  await cluster.destroy();
  const info = await cluster.start();
  const dir = mkdtempSync(join(tmpdir(), 'runfleet-soak-'));
  const shared = sharedDir('runfleet-soak-tasks-');
  const connection = await Connection.connect({ address: info.address });
  const client = new Client({ connection, namespace: NAMESPACE, dataConverter: createDataConverter() });
  const controlQueue = unique('soak-control');
  const pool = unique('soak');
  const members: Member[] = [];
  const hosts: TestHost[] = [];
  let peaks = { services: 0, postgres: 0 };
  const sampler = setInterval(() => {
    const services = SERVICES.reduce((s, name) => {
      const pid = cluster.pid(name);
      return s + (pid === null ? 0 : rssBytes(pid));
    }, 0);
    const pg = cluster.status().find((r) => r.name === 'postgres')?.pid ?? null;
    const postgres = pg === null ? 0 : [pg, ...childrenOf(pg)].reduce((s, pid) => s + rssBytes(pid), 0);
    peaks = { services: Math.max(peaks.services, services), postgres: Math.max(peaks.postgres, postgres) };
    for (const m of members) m.peakBytes = Math.max(m.peakBytes, m.child.peakRssBytes());
  }, 2_000);

  const member = (
    role: Member['role'],
    name: string,
    host: TestHost,
    argv: string[],
    env: NodeJS.ProcessEnv,
  ): Member => {
    const start = (): BenchChild =>
      new BenchChild({
        name: `${role} ${name}`,
        command: 'ip',
        args: ['netns', 'exec', host.name, process.execPath, RUNFLEET_BIN, ...argv],
        env: { ...childEnv(host.temporalAddress), ...env },
        cwd: dir,
        logFile: join(dir, `${name}.log`),
      });
    const m: Member = { role, name, host, child: start(), start, peakBytes: 0 };
    members.push(m);
    return m;
  };

  try {
    log(
      `Temporal service at ${info.address}; ${args.controls} control workers and ${args.runners} runners on hosts of their own`,
    );
    for (let i = 0; i < args.controls; i++) {
      const host = await createTestHost(info.address);
      hosts.push(host);
      member('control', `control-${i}`, host, ['worker'], { RUNFLEET_CONTROL_TASK_QUEUE: controlQueue });
    }
    const admin = new RunnerAdmin(client, {
      controlTaskQueue: controlQueue,
      address: info.address,
      operatorKey: BENCH_OPERATOR.seed,
    });
    for (let i = 0; i < args.runners; i++) {
      const host = await createTestHost(info.address);
      hosts.push(host);
      const name = `${pool}-r${i}`;
      const { token } = await admin.create({ name, pool, settings: { slots: args.slots }, by: 'bench' });
      const argv = ['runner', 'serve', '--pool', pool, '--name', name, '--slots', String(args.slots)];
      argv.push('--data-dir', join(dir, 'runners', name));
      const m = member('runner', name, host, argv, { RUNFLEET_RUNNER_TOKEN: token });
      await m.child.waitForOutput(/serving pool/, READY_TIMEOUT_MS);
    }
    log('every runner serving');

    const runs: { id: string; file: string }[] = [];
    const windowMs = args.minutes * 60_000;
    const t0 = Date.now();
    let submitting = true;
    const faults: string[] = [];
    const faultLoop = (async () => {
      if (args.faultEverySec === 0) return;
      while (submitting) {
        // In steps, so the loop ends soon after the last run has started.
        const until = Date.now() + args.faultEverySec * 1000 * between(0.5, 1.5);
        while (submitting && Date.now() < until) await sleep(Math.min(1_000, until - Date.now()));
        if (!submitting) return;
        const kind = pick(['cut-runner', 'cut-control', 'kill-runner', 'kill-control'] as const);
        const target = pick(members.filter((m) => m.role === (kind.endsWith('runner') ? 'runner' : 'control')));
        const at = `${Math.round((Date.now() - t0) / 1000)} s`;
        if (kind.startsWith('cut')) {
          const ms = kind === 'cut-runner' ? between(15_000, 30_000) : between(10_000, 20_000);
          log(`fault at ${at}: ${target.name}'s link cut for ${Math.round(ms / 1000)} s`);
          faults.push(`${at}: ${target.name} cut off ${Math.round(ms / 1000)} s`);
          target.host.cut();
          await sleep(ms);
          target.host.restore();
        } else {
          const downMs = kind === 'kill-runner' ? 5_000 : 3_000;
          log(`fault at ${at}: ${target.name} killed -9, back in ${downMs / 1000} s`);
          faults.push(`${at}: ${target.name} kill -9`);
          target.peakBytes = Math.max(target.peakBytes, target.child.peakRssBytes());
          process.kill(target.child.pid, 'SIGKILL');
          await target.child.exited;
          await sleep(downMs);
          // A runner is registered by now: it starts again from its state dir, without the token.
          target.child = target.start();
        }
      }
    })();

    for (let i = 0; i < args.runs; i++) {
      const due = t0 + (windowMs * i) / args.runs;
      if (due > Date.now()) await sleep(due - Date.now());
      const id = `soak-${i}`;
      const file = sharedFile(shared, `${id}.ran`);
      const step = (task: string, sleepS: number): string[] => [
        `echo ${task} >> ${file}`,
        `sleep ${sleepS.toFixed(1)}`,
      ];
      const spec = {
        name: 'soak',
        group: '/bench/soak',
        tasks: [
          { name: 'a', pool, steps: step('a', between(0.2, 2)) },
          { name: 'b', pool, depends: ['a'], steps: step('b', between(0.2, 1)) },
          { name: 'c', pool, depends: ['a'], steps: step('c', between(0.2, 1)) },
        ],
      };
      await client.workflow.start('runWorkflow', {
        taskQueue: controlQueue,
        workflowId: runWorkflowId('/bench/soak', id),
        args: [{ spec }],
      });
      runs.push({ id, file });
      if (i % 100 === 99) log(`${i + 1} runs started`);
    }
    submitting = false;
    await faultLoop;
    log(`all ${args.runs} runs started in ${Math.round((Date.now() - t0) / 1000)} s; waiting for them to end`);

    const drainUntil = Date.now() + args.drainMinutes * 60_000;
    let open = args.runs;
    while (Date.now() < drainUntil) {
      open = (
        await client.workflowService.countWorkflowExecutions({
          namespace: NAMESPACE,
          query: `WorkflowType = 'runWorkflow' AND ExecutionStatus = 'Running'`,
        })
      ).count as unknown as number;
      if (Number(open) === 0) break;
      await sleep(5_000);
    }
    clearInterval(sampler);

    const latencies: number[] = [];
    const results: Record<string, number> = {};
    let twice = 0;
    let lostForEver = 0;
    let unfinished = 0;
    const twiceWhere: string[] = [];
    for (let i = 0; i < runs.length; i += 20) {
      await Promise.all(
        runs.slice(i, i + 20).map(async ({ id, file }) => {
          const handle = client.workflow.getHandle(runWorkflowId('/bench/soak', id));
          const d = await handle.describe();
          if (d.closeTime === undefined) {
            unfinished++;
            return;
          }
          latencies.push(d.closeTime.getTime() - d.startTime.getTime());
          const state = (await handle.result()) as RunState;
          results[state.result] = (results[state.result] ?? 0) + 1;
          lostForEver += Object.values(state.tasks).filter((t) => t.status === 'lost').length;
          const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
          for (const task of ['a', 'b', 'c']) {
            const n = lines.filter((l) => l === task).length;
            if (n > 1) {
              twice++;
              twiceWhere.push(`${id}/${task} x${n}`);
            }
          }
        }),
      );
    }
    const mib = (b: number): string => String(Math.round(b / (1024 * 1024)));
    const peakOf = (role: Member['role']): string =>
      mib(Math.max(0, ...members.filter((m) => m.role === role).map((m) => m.peakBytes)));
    const p = (q: number): string => (latencies.length === 0 ? '-' : (percentile(latencies, q) / 1000).toFixed(1));
    console.log('');
    console.log(
      `Soak on Temporal as a service (4 processes on PostgreSQL): ${args.runs} runs over ${args.minutes} min, ` +
        `${args.controls} control workers and ${args.runners} runners (${args.slots} slots) on hosts of their own, ` +
        `${faults.length} faults`,
    );
    console.log(
      formatTable(
        [
          'runs finished',
          'results',
          'unfinished',
          'tasks run twice',
          'tasks lost for ever',
          'p50 / p95 run latency s',
          'peak RSS MiB: services / postgres / control worker / runner',
        ],
        [
          [
            String(latencies.length),
            Object.entries(results)
              .map(([r, n]) => `${r} ${n}`)
              .join(', '),
            String(unfinished),
            String(twice),
            String(lostForEver),
            `${p(50)} / ${p(95)}`,
            `${mib(peaks.services)} / ${mib(peaks.postgres)} / ${peakOf('control')} / ${peakOf('runner')}`,
          ],
        ],
      ),
    );
    console.log(`Faults: ${faults.length === 0 ? 'none' : faults.join('; ')}`);
    if (twiceWhere.length > 0) console.log(`Run twice: ${twiceWhere.join(', ')}`);
    console.log(
      'services: the four Temporal processes together; postgres: the postmaster and its backends together (RSS, shared memory counted in each); ' +
        'control worker, runner: the highest single process (VmHWM).',
    );
    const file = resultsFile('soak');
    writeFileSync(
      file,
      JSON.stringify(
        {
          finishedAt: new Date().toISOString(),
          machine: machineInfo(),
          args,
          runsFinished: latencies.length,
          results,
          unfinished,
          tasksRunTwice: twice,
          tasksLostForEver: lostForEver,
          latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95) },
          peakRssMiB: {
            services: Number(mib(peaks.services)),
            postgres: Number(mib(peaks.postgres)),
            control: Number(peakOf('control')),
            runner: Number(peakOf('runner')),
          },
          faults,
        },
        null,
        2,
      ) + '\n',
    );
    console.log(`Results written to ${file}`);
  } finally {
    clearInterval(sampler);
    await Promise.all(members.map((m) => m.child.stop()));
    for (const host of hosts) await host.remove();
    await connection.close();
    await cluster.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error('soak failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
