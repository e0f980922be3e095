/**
 * Trust boundary of the process driver (issue 10, item 2): a task is hostile code on the runner's
 * machine. On a root runner (tests run as root) it runs as a user of its own, so it cannot read the
 * runner's identity, token, environment or the data key file, cannot reach another task's
 * workspace, log or script, and cannot forge another task's outcome or the runner's markers. Real
 * `runfleet runner serve` processes on the real dev server; each attack prints what it tried and
 * what happened.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runFolder, taskLogPath } from '../../activities/runner';
import { createKeyFile } from '../../src/codec';
import { runWorkflowId } from '../../src/ids';
import { runnerConfigPath, writeRunnerSettings } from '../../src/runner/local-config';
import { SessionStore } from '../../src/runner/sessions';
import type { RunState } from '../../src/types';
import { startHarness, task, type Harness } from '../helpers/harness';
import { killAll, registerRunner, startRunnerProcess, type Proc } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { until } from '../helpers/until';

const isRoot = process.getuid?.() === 0;
const SETTINGS = { slots: 3, heartbeatMs: 1_000, pingMs: 1_000, watchdogMs: 6_000 };

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runners: [] });
});
afterEach(async () => {
  await killAll();
});
afterAll(async () => {
  await killAll();
  await h?.stop();
});

interface Served {
  name: string;
  proc: Proc;
  stateDir: string;
  keyFile: string;
  envSecret: string;
  token: string;
}

/**
 * A runner laid out as `runfleet up` lays it out (`<home>/data/runners/<name>`, the data key file
 * in `<home>/keys/`), its token in its `runner.yaml` and a secret in its environment.
 */
async function serve(): Promise<Served> {
  const name = uniqueName('sec');
  const home = join(h.dataDir, `${name}-home`);
  const stateDir = join(home, 'data', 'runners', name);
  mkdirSync(stateDir, { recursive: true });
  const keyFile = createKeyFile(join(home, 'keys', 'runfleet.keys')).file;
  const token = await registerRunner(h.client, h.controlQueue, { name, pool: h.pool, settings: SETTINGS });
  writeRunnerSettings(runnerConfigPath(stateDir), { 'runner.name': name, 'runner.token': token });
  const envSecret = `env-secret-${name}`;
  const proc = startRunnerProcess({
    address: h.address,
    name,
    pool: h.pool,
    dataDir: stateDir,
    env: { RUNFLEET_TEST_SECRET: envSecret },
  });
  await until(`runner ${name} serving`, () => /\b(serving|registered)\b/.test(proc.output()), {
    timeoutMs: 60_000,
    detail: () => proc.output(),
  });
  return { name, proc, stateDir, keyFile, envSecret, token };
}

/** A shell step that runs `cmd` and prints `ATTACK <what>: failed|SUCCEEDED: <first output>`. */
function attack(what: string, cmd: string): string {
  return (
    `if out=$( { ${cmd} ; } 2>&1 ); then r=SUCCEEDED; else r=failed; fi; ` +
    `printf 'ATTACK %s: %s: %s\\n' '${what.replace(/'/g, `'\\''`)}' "$r" "$(printf %s "$out" | head -c 160 | tr '\\n' ' ')"`
  );
}

/** The attack lines a task printed, printed here too. */
function attacks(stateDir: string, runId: string, taskName: string): string[] {
  const log = readFileSync(taskLogPath(stateDir, runId, taskName), 'utf8');

  const lines = log.split('\n').filter((l) => l.startsWith('ATTACK '));
  for (const line of lines) console.log(`${taskName}: ${line}`);
  if (lines.length === 0) console.log(`${taskName} printed no attack line; its log:\n${log}`);
  return lines;
}

/** Starts a run whose id is known before it starts (the attacks name its paths). */
async function startRun(runId: string, spec: { name: string; group: string; tasks: unknown[] }) {
  return h.client.workflow.start('runWorkflow', {
    taskQueue: h.controlQueue,
    workflowId: runId,
    args: [{ spec }],
  });
}

function sessionDirOf(stateDir: string, runId: string, taskName: string, runner: string, attempt = 1): string {
  return new SessionStore(stateDir).dirFor({ run: runId, task: taskName, attempt, runner, pool: h.pool });
}

describe.runIf(isRoot)('process driver trust boundary: a hostile task on a root runner', () => {
  it("cannot read the runner's identity, its token, its environment or the data key file", async () => {
    const r = await serve();
    const pid = r.proc.child.pid as number;
    const handle = await h.start({
      name: 'thief',
      group: '/test/security',
      tasks: [
        task(h, 'thief', [
          attack('read identity.json', `cat '${join(r.stateDir, 'identity.json')}'`),
          attack('read runner.yaml', `cat '${runnerConfigPath(r.stateDir)}'`),
          attack(`read /proc/${pid}/environ`, `tr '\\0' '\\n' < /proc/${pid}/environ`),
          attack('read the data key file', `cat '${r.keyFile}'`),
          attack('list the state dir', `ls '${r.stateDir}'`),
          attack('list the sessions', `ls '${join(r.stateDir, 'sessions')}'`),
          // Its supervisor (root) records its outcome: a task that could kill it would lose it.
          attack('kill its supervisor', 'kill -KILL $PPID'),
          // Succeeds when the step kept a way back up: no_new_privs unset (a setuid binary would
          // elevate it), a capability, or a supplementary group.
          attack(
            'keep a privilege (no_new_privs unset, a capability or a group)',
            `grep -E '^(NoNewPrivs:\\s+0|Cap(Inh|Prm|Eff|Amb):\\s+0*[1-9a-f]|Groups:\\s+[0-9])' /proc/self/status`,
          ),
          'id -u',
        ]),
      ],
    });
    const s = (await handle.result()) as RunState;
    expect(s.tasks.thief?.status).toBe('success');
    const lines = attacks(r.stateDir, handle.workflowId, 'thief');
    expect(lines).toHaveLength(8);
    for (const line of lines) expect(line).toMatch(/^ATTACK [^:]+: failed: /);
    const log = readFileSync(taskLogPath(r.stateDir, handle.workflowId, 'thief'), 'utf8');
    // Nothing secret reached the task's output, whatever the exit codes said.
    expect(log).not.toContain(r.envSecret);
    expect(log).not.toContain(r.token);
    expect(log).not.toContain(readFileSync(r.keyFile, 'utf8').slice(0, 40));
    // The files exist, readable by the runner: the task was refused, not misdirected.
    const identity = JSON.parse(readFileSync(join(r.stateDir, 'identity.json'), 'utf8')) as Record<string, unknown>;
    for (const value of Object.values(identity)) {
      if (typeof value === 'string' && value.length >= 16) expect(log).not.toContain(value);
    }
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).toContain(r.envSecret);
    console.log(
      `runner pid ${pid} (root); the task ran as uid ${/^\d+$/m.exec(log.split('==> step 9/9')[1] ?? '')?.[0]}`,
    );
  });

  it("cannot read another running task's workspace, log or script, nor list the run's folders", async () => {
    const r = await serve();
    const runId = runWorkflowId('/test/security', uniqueName('peek'));
    const victimDir = sessionDirOf(r.stateDir, runId, 'victim', r.name);
    const handle = await startRun(runId, {
      name: 'peek',
      group: '/test/security',
      tasks: [
        task(h, 'victim', ['echo victim-secret > secret.txt; echo victim-log-secret', 'sleep 6']),
        task(h, 'attacker', [
          'sleep 2',
          attack("read the victim's workspace file", 'cat ../victim/secret.txt'),
          attack(
            "read the victim's workspace by its absolute path",
            `cat '${join(r.stateDir, 'work', runFolder(runId), 'victim', 'secret.txt')}'`,
          ),
          attack("list the run's workspaces", 'ls ..'),
          attack("read the victim's log", `cat '${taskLogPath(r.stateDir, runId, 'victim')}'`),
          // Its steps file (native supervisor) or script (shell supervisor), whichever it has.
          attack(
            "read the victim's steps",
            `for f in task.steps task.sh; do cat '${victimDir}'/$f && exit 0; done; exit 1`,
          ),
          attack(
            "kill the victim's step",
            `found=; for d in /proc/[0-9]*; do case "$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)" in 'sleep 6 ') found=1; kill -KILL "\${d#/proc/}" || exit 1;; esac; done; test -n "$found"`,
          ),
        ]),
      ],
    });
    const s = (await handle.result()) as RunState;
    const lines = attacks(r.stateDir, handle.workflowId, 'attacker');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).toMatch(/^ATTACK [^:]+: failed: /);
    expect(readFileSync(taskLogPath(r.stateDir, handle.workflowId, 'attacker'), 'utf8')).not.toContain('victim-secret');
    expect(s.tasks.victim?.status).toBe('success');
    console.log(`victim: ${s.tasks.victim?.status} (exit ${s.tasks.victim?.exitCode}) while the attacker ran`);
  });

  it("cannot forge another task's exit file, a done or refused marker: the runner's records are unchanged", async () => {
    const r = await serve();
    const store = new SessionStore(r.stateDir);
    const runId = runWorkflowId('/test/security', uniqueName('forge'));
    const victimDir = sessionDirOf(r.stateDir, runId, 'victim', r.name);
    const victimKey = SessionStore.keyOf({ run: runId, task: 'victim', attempt: 1 });
    const laterKey = SessionStore.keyOf({ run: runId, task: 'later', attempt: 1 });
    const attackerDir = sessionDirOf(r.stateDir, runId, 'attacker', r.name);
    const sessions = join(r.stateDir, 'sessions');
    const forged = '{"exitCode":42,"failedStep":0}';
    const handle = await startRun(runId, {
      name: 'forge',
      group: '/test/security',
      tasks: [
        task(h, 'victim', ['sleep 6', 'exit 0']),
        task(h, 'attacker', [
          'sleep 2',
          attack("write the victim's exit file", `echo '${forged}' > '${join(victimDir, 'exit')}'`),
          attack('write its own exit file', `echo '{"exitCode":0,"failedStep":null}' > '${join(attackerDir, 'exit')}'`),
          attack(
            "write the victim's done marker",
            `echo '{"outcome":null}' > '${join(sessions, `${victimKey}.done`)}'`,
          ),
          attack('write a refused marker for a later task', `: > '${join(sessions, `${laterKey}.refused`)}'`),
          attack(
            "remove the victim's session record",
            `rm -f '${join(sessions, `${victimKey}.json`)}' && test ! -e '${join(sessions, `${victimKey}.json`)}'`,
          ),
        ]),
        task(h, 'later', ['true'], { depends: ['victim'] }),
      ],
    });
    const s = (await handle.result()) as RunState;
    const lines = attacks(r.stateDir, handle.workflowId, 'attacker');
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(line).toMatch(/^ATTACK [^:]+: failed: /);
    // Each task's own outcome, as it really ended: the attacker chose only its own exit code.
    expect(s.tasks.victim?.exitCode).toBe(0);
    expect(s.tasks.attacker?.exitCode).toBe(0);
    expect(s.tasks.later?.status).toBe('success');
    const victimRecord = store.lookup({ run: runId, task: 'victim', attempt: 1 });
    expect(victimRecord).toEqual({
      state: 'ended',
      outcome: expect.objectContaining({ exitCode: 0, failedStep: null }),
    });
    expect(store.lookup({ run: runId, task: 'later', attempt: 1 })).toEqual({
      state: 'ended',
      outcome: expect.objectContaining({ exitCode: 0 }),
    });
    console.log(
      `outcomes: victim exit ${s.tasks.victim?.exitCode}, attacker exit ${s.tasks.attacker?.exitCode}, later ${s.tasks.later?.status}; ` +
        `the runner's record of the victim: ${JSON.stringify(victimRecord)}`,
    );
  });
});
