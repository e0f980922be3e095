/**
 * Containers hardened by default (issue 10, item 1), attacked the way a hostile run author would,
 * on the real dev server, a real `runner serve` process and the real Podman engine: a run file
 * mounting `/` or `../../..` (refused by the client, and by the run itself when started around
 * the client), a symlink in the workspace pointing out of it, `id -u`, the created container's
 * hardening as the engine reports it, root on a runner that does not allow it, limits above the
 * runner's maxima, and a fork bomb (small: 40 sleepers against a limit of 16).
 *
 * The runner's policy comes from its own `runner.yaml`: small limits so the tests can see them.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFolder } from '../../activities/runner';
import { RunfleetClient } from '../../src/client/client';
import { RunfleetError } from '../../src/errors';
import { runWorkflowId } from '../../src/ids';
import type { RunState } from '../../src/types';
import { startHarness, type Harness } from '../helpers/harness';
import { BUSYBOX_IMAGE, startTestPodman, type TestPodman } from '../helpers/podman';
import { killAll, registerRunner, startRunnerProcess, type Proc } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { readWholeTaskLog } from '../helpers/task-log';
import { until } from '../helpers/until';

/** Fast registry timings, as in runner-docker.test.ts. */
const SETTINGS = { slots: 4, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };
/** The runner's container policy (runner.yaml): small, so each limit shows. */
const POLICY = {
  containerUser: '65534:65534',
  allowRoot: false,
  containerMemory: '128Mi',
  containerMemoryMax: '256Mi',
  containerPids: 64,
  containerPidsMax: 128,
};
const MiB = 2 ** 20;

let h: Harness;
let rf: RunfleetClient;
let podman: TestPodman;
let runner: { name: string; pool: string; stateDir: string; proc: Proc };

beforeAll(async () => {
  // Podman first: if it cannot start, every test fails with its reason.
  podman = await startTestPodman();
  h = await startHarness({ runners: [] });
  rf = RunfleetClient.fromClient(h.client, { controlTaskQueue: h.controlQueue, address: h.address });
  runner = await startRunner();
}, 180_000);
afterAll(async () => {
  await killAll();
  await h?.stop();
  await podman?.stop();
});

/** A registered runner process with both drivers and the small POLICY, ready to take work. */
async function startRunner(): Promise<typeof runner> {
  const name = uniqueName('sec-dk');
  const pool = uniqueName('pool');
  const token = await registerRunner(h.client, h.controlQueue, { name, pool, settings: SETTINGS });
  const stateDir = join(h.dataDir, 'runners', name);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(
    join(stateDir, 'runner.yaml'),
    `runner:\n${Object.entries(POLICY)
      .map(([k, v]) => `  ${k}: ${typeof v === 'string' ? JSON.stringify(v) : v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  const proc = startRunnerProcess({
    address: h.address,
    name,
    pool,
    dataDir: stateDir,
    token,
    healthPort: 0,
    args: ['--driver', 'process', 'docker'],
    env: { DOCKER_HOST: `unix://${podman.socketPath}`, RUNFLEET_CONTROL_TASK_QUEUE: h.controlQueue },
  });
  const port = await until(
    'the health port',
    async () => /health: http:\/\/127\.0\.0\.1:(\d+)\/livez/.exec(proc.output())?.[1],
    60_000,
  );
  await until('the runner ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000);
  return { name, pool, stateDir, proc };
}

function dockerTask(name: string, steps: string[], extra: Record<string, unknown> = {}) {
  return { name, steps, pool: runner.pool, driver: 'docker', image: BUSYBOX_IMAGE, ...extra };
}

/** The containers (any state) of one run, by their labels. */
function containersOf(runId: string): Promise<Docker.ContainerInfo[]> {
  return podman.docker.listContainers({ all: true, filters: { label: [`runfleet.run=${runId}`] } });
}

/** Every container id seen for a run while watching (polled until `stop`). */
function watchContainers(runId: string): { ids: Set<string>; stop(): Promise<void> } {
  const ids = new Set<string>();
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const c of await containersOf(runId).catch(() => [])) ids.add(c.Id);
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return {
    ids,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

function readLog(runId: string, task: string): Promise<string> {
  return readWholeTaskLog(rf, runId, task);
}

/** Submits through the client; returns the client's refusal, or fails the test if the run started. */
async function refusedByClient(spec: unknown, id: string): Promise<RunfleetError> {
  try {
    const started = await rf.submitRun(spec, { id });
    throw new Error(`the client started ${started.workflowId}`);
  } catch (err) {
    if (err instanceof RunfleetError) return err;
    throw err;
  }
}

describe('a run file against the docker driver', () => {
  it.each([
    ['/', 'is absolute'],
    ['../../..', "leaves the task's workspace"],
  ])('working_dir %j: the client refuses it naming the field, nothing starts', async (wd, why) => {
    const id = uniqueName('mount');
    const spec = {
      name: 'mount',
      group: '/sec/docker',
      tasks: [dockerTask('escape', ['ls /workspace'], { working_dir: wd })],
    };
    const err = await refusedByClient(spec, id);
    console.log(`tried: submit a run with working_dir ${JSON.stringify(wd)}; got: ${err.code}: ${err.message}`);
    expect(err.code).toBe('InvalidRunSpec');
    expect(err.message).toContain(`tasks.escape.working_dir: "${wd}" ${why}`);
    // Nothing of it exists: no workflow, no container.
    const runId = runWorkflowId('/sec/docker', id);
    await expect(h.client.workflow.getHandle(runId).describe()).rejects.toThrow(/not found/i);
    expect(await containersOf(runId)).toEqual([]);
  });

  it('working_dir "../../.." started around the client (a direct workflow start): the run refuses it, no container', async () => {
    const handle = await h.start({
      name: 'direct',
      group: '/sec/docker',
      tasks: [dockerTask('escape', ['ls /workspace'], { working_dir: '../../..' })],
    });
    const watch = watchContainers(handle.workflowId);
    const outcome = await handle.result().then(
      (s: RunState) => `completed: ${s.result}`,
      (err: Error) => `${err.name}: ${(err.cause as Error | undefined)?.message ?? err.message}`,
    );
    await watch.stop();
    console.log(
      `tried: temporal workflow start with working_dir "../../.."; got: ${outcome}; containers: ${watch.ids.size}`,
    );
    expect(outcome).toContain('tasks.escape.working_dir: "../../.." leaves the task\'s workspace');
    expect(watch.ids.size).toBe(0);
  }, 60_000);

  it('a symlink in the workspace pointing at / is refused by the runner, no container', async () => {
    const id = uniqueName('link');
    const runId = runWorkflowId('/sec/docker', id);
    // What an earlier attempt (or anything else) could leave in the task's workspace.
    const workspace = join(runner.stateDir, 'work', runFolder(runId), runFolder('escape'));
    mkdirSync(workspace, { recursive: true });
    symlinkSync('/', join(workspace, 'host'));
    const submitted = await rf.submitRun(
      { name: 'link', group: '/sec/docker', tasks: [dockerTask('escape', ['ls -la .'], { working_dir: 'host/etc' })] },
      { id },
    );
    const watch = watchContainers(runId);
    const s = await rf.waitRun(submitted.workflowId);
    await watch.stop();
    const t = s.tasks.escape!;
    console.log(
      `tried: working_dir "host/etc" where host -> /; got: ${t.status}: ${t.reason}; containers: ${watch.ids.size}`,
    );
    expect(t.status).toBe('failed');
    expect(t.reason).toContain('"host" is a link out of the task\'s workspace (to /)');
    expect(watch.ids.size).toBe(0);
    // Nothing was made through the link.
    expect(existsSync('/etc/host')).toBe(false);
  }, 90_000);

  it('runs as an unprivileged user, without capabilities, in a workspace it can write; the engine reports the hardening', async () => {
    const handle = await h.start({
      name: 'who',
      group: '/sec/docker',
      tasks: [
        dockerTask(
          'who',
          [
            'echo "uid=$(id -u) gid=$(id -g)"',
            'grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status',
            'echo "pids.max=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"',
            'echo "memory=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"',
            'echo written > out.txt && ls -ln out.txt',
            'sleep 3',
          ],
          { working_dir: 'src/./sub' },
        ),
      ],
    });
    const runId = handle.workflowId;
    const [seen] = await until(
      'the container',
      async () => {
        const list = await containersOf(runId);
        return list.length > 0 ? list : undefined;
      },
      60_000,
    );
    const info = await podman.docker.getContainer(seen!.Id).inspect();
    const s: RunState = await handle.result();
    const log = await readLog(runId, 'who');
    const hc = info.HostConfig;
    const mounts = info.Mounts.map((m) => `${m.Source}:${m.Destination}`);
    console.log(
      `tried: a docker task printing its ids, capabilities and limits; got: ${s.tasks.who!.status}\n` +
        `  log: ${log
          .split('\n')
          .filter((l) => /uid=|Cap|NoNew|pids|memory|out\.txt/.test(l))
          .join(' | ')}\n` +
        `  inspect: User=${info.Config.User} CapDrop=${JSON.stringify(hc.CapDrop)} SecurityOpt=${JSON.stringify(hc.SecurityOpt)} ` +
        `PidsLimit=${hc.PidsLimit} Memory=${hc.Memory} MemorySwap=${hc.MemorySwap} Privileged=${hc.Privileged} ` +
        `WorkingDir=${info.Config.WorkingDir} mounts=${JSON.stringify(mounts)}`,
    );
    expect(s.tasks.who).toMatchObject({ status: 'success', exitCode: 0 });
    // From inside: nobody, no capability, no way back up.
    expect(log).toContain('uid=65534 gid=65534');
    expect(log).toMatch(/CapEff:\s+0000000000000000/);
    expect(log).toMatch(/CapBnd:\s+0000000000000000/);
    expect(log).toMatch(/NoNewPrivs:\s+1/);
    expect(log).toContain('pids.max=64');
    expect(log).toContain(`memory=${128 * MiB}`);
    expect(log).toMatch(/-rw\S+\s+1 65534\s+65534 .* out\.txt/);
    // From the engine: what was asked of it.
    expect(info.Config.User).toBe('65534:65534');
    // Docker keeps ["ALL"]; Podman expands it into every capability it would have granted.
    const dropped = ((hc.CapDrop ?? []) as string[]).map((c) => c.toUpperCase().replace(/^CAP_/, ''));
    expect(
      dropped.includes('ALL') ||
        ['CHOWN', 'DAC_OVERRIDE', 'SETUID', 'SETGID', 'KILL'].every((c) => dropped.includes(c)),
    ).toBe(true);
    expect(hc.CapAdd ?? []).toEqual([]);
    expect(hc.SecurityOpt?.join(',')).toMatch(/no-new-privileges/);
    expect(hc.Privileged).toBe(false);
    expect(hc.PidsLimit).toBe(64);
    expect(hc.Memory).toBe(128 * MiB);
    expect(info.Config.WorkingDir).toBe('/workspace/src/sub');
    // No host mount but the task's workspace and its own session dir.
    const workspace = join(runner.stateDir, 'work', runFolder(runId), 'who');
    expect(info.Mounts.map((m) => m.Destination).sort()).toEqual(['/.runfleet', '/workspace']);
    expect(info.Mounts.find((m) => m.Destination === '/workspace')?.Source).toBe(workspace);
    expect(info.Mounts.find((m) => m.Destination === '/.runfleet')?.Source).toContain(
      join(runner.stateDir, 'sessions'),
    );
    expect(readFileSync(join(workspace, 'src', 'sub', 'out.txt'), 'utf8')).toBe('written\n');
  }, 90_000);

  it('asking for root on a runner that does not allow it, or above its maxima, is refused before any container', async () => {
    const handle = await h.start({
      name: 'greedy',
      group: '/sec/docker',
      tasks: [
        dockerTask('root', ['id -u'], { run_as_root: true }),
        dockerTask('memory', ['true'], { resources: { memory: '1Gi' } }),
        dockerTask('pids', ['true'], { resources: { pids: 4096 } }),
      ],
    });
    const watch = watchContainers(handle.workflowId);
    const s: RunState = await handle.result();
    await watch.stop();
    for (const name of ['root', 'memory', 'pids']) {
      const t = s.tasks[name]!;
      console.log(
        `tried: task ${name}; got: ${t.status}: ${t.reason} (attempts ${t.attempts}, ${t.startedAt} -> ${t.finishedAt})`,
      );
    }
    console.log(`  containers created: ${watch.ids.size}`);
    expect(s.tasks.root!.status).toBe('failed');
    expect(s.tasks.root!.reason).toContain('asks for root in its container (run_as_root)');
    expect(s.tasks.root!.reason).toContain('does not allow it (runner.allowRoot)');
    expect(s.tasks.memory!.status).toBe('failed');
    expect(s.tasks.memory!.reason).toContain('resources.memory 1Gi');
    expect(s.tasks.memory!.reason).toContain('at most 256Mi');
    expect(s.tasks.pids!.status).toBe('failed');
    expect(s.tasks.pids!.reason).toContain('resources.pids 4096');
    expect(watch.ids.size).toBe(0);
    // Slow: the third task's reservation was answered only after ~50 s (a scheduling matter, not this).
  }, 150_000);

  it('a fork bomb (40 sleepers against pids: 16) is stopped by the pids limit; the runner carries on', async () => {
    const handle = await h.start({
      name: 'forks',
      group: '/sec/docker',
      tasks: [
        dockerTask(
          'bomb',
          // Each `sleep &` is one process; the shell gives up at the first fork the limit refuses.
          ['for i in $(seq 1 40); do sleep 3 & echo "started $i"; done; echo "no limit hit"'],
          { resources: { pids: 16 } },
        ),
        dockerTask('after', ['echo "after the bomb"'], { depends: [{ task: 'bomb', conditions: ['on_failure'] }] }),
      ],
    });
    const s: RunState = await handle.result();
    const log = await readLog(handle.workflowId, 'bomb');
    const started = Math.max(0, ...[...log.matchAll(/started (\d+)/g)].map((m) => Number(m[1])));
    console.log(
      `tried: 40 background sleeps with resources.pids 16; got: ${started} started, then "${/can't fork[^\n]*/.exec(log)?.[0]}"; ` +
        `bomb ${s.tasks.bomb!.status} (exit ${s.tasks.bomb!.exitCode}), next task ${s.tasks.after!.status}`,
    );
    expect(log).toContain("can't fork");
    expect(log).not.toMatch(/^no limit hit$/m);
    expect(started).toBeGreaterThan(0);
    // The container's shell and the step's count too: fewer than 16 sleepers.
    expect(started).toBeLessThan(16);
    expect(s.tasks.bomb!.status).toBe('failed');
    expect(s.tasks.after).toMatchObject({ status: 'success', exitCode: 0 });
  }, 90_000);
});
