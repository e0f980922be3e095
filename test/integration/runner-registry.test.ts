/**
 * The runner registry end to end against the real dev server: `runner/<name>` workflows on a
 * control worker of this file, runners faked as real Temporal workers on `runner/<name>` that
 * serve the session (heartbeating a status) and the ping, as the runner agent does.
 */
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionEnd, SessionRequest } from '../../activities/types';
import type { RunnerAdmin } from '../../src/client/runners';
import { createRegistryActivities, verifyAdmission } from '../../activities/registry';
import { KeyRing } from '../../src/codec/keys';
import { dataConverter } from '../../src/codec/compression';
import { RunfleetError } from '../../src/errors';
import { asFailure } from '../../src/failures';
import { runnerTaskQueue, runnerWorkflowId } from '../../src/ids';
import {
  sessionOnlineSignal,
  taskLostSignal,
  type RunnerLiveStatus,
  type RunnerSettings,
  type Admission,
} from '../../workflows/runner-messages';
import {
  TEST_OPERATOR_KEY_FILE,
  registerRequest,
  startHarness,
  testOperator,
  testRunnerAdmin,
  tokenSecret,
  workflowBundle,
  type Harness,
} from '../helpers/harness';
import { runCli, type CliResult } from '../helpers/processes';
import { uniqueName } from '../helpers/temporal';
import { untilRead } from '../helpers/until';

/** Fast timings: idle after 4 s without heartbeat, lost 8 s later. */
const FAST: Partial<RunnerSettings> = { heartbeatMs: 1_000, watchdogMs: 6_000 };
const projectRoot = join(__dirname, '..', '..');

let h: Harness;
let admin: RunnerAdmin;
let control: { worker: Worker; done: Promise<void>; connection: NativeConnection };

beforeAll(async () => {
  // The harness without its control worker: this file's control worker also serves sealDataKeys.
  h = await startHarness({ withControl: false });
  const connection = await NativeConnection.connect({ address: h.address });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue: h.controlQueue,
    dataConverter,
    workflowBundle: await workflowBundle(),
    maxCachedWorkflows: 50,
    activities: {
      // The real checks with the suite's operator key; a fake box, to see whom it was sealed for.
      sealDataKeys: async ({ publicKey, admission }: { publicKey: string; admission?: Admission }) => {
        try {
          verifyAdmission(testOperator().publicKey, admission, publicKey, null);
        } catch (err) {
          throw asFailure(err);
        }
        return [{ id: 'test', sealed: Buffer.from(`sealed-for:${publicKey}`).toString('base64') }];
      },
      verifyOperatorCommand: createRegistryActivities({
        keys: new KeyRing(),
        operatorPublicKey: testOperator().publicKey,
      }).verifyOperatorCommand,
    },
  });
  control = { worker, done: worker.run(), connection };
  admin = testRunnerAdmin(h.client, h.controlQueue, h.address);
});

afterAll(async () => {
  control?.worker.shutdown();
  await control?.done;
  await control?.connection.close();
  await h?.stop();
});

interface FakeRunner {
  runnerId: string;
  bootId: string;
  publicKey: string;
  sessions: SessionRequest[];
  deleted: { by: string; reason: string } | null;
  /** Hangs: stops heartbeating, and takes later sessions without reporting (a stuck runner). */
  freeze(): void;
  stop(): Promise<void>;
}

/** A runner as the registry sees it: a worker on `runner/<name>` serving the session and the ping. */
async function startFakeRunner(name: string, identity?: { runnerId: string; publicKey: string }): Promise<FakeRunner> {
  const runnerId = identity?.runnerId ?? randomUUID();
  const publicKey = identity?.publicKey ?? randomBytes(44).toString('base64');
  const bootId = randomUUID();
  const connection = await NativeConnection.connect({ address: h.address });
  let frozen = false;
  let enabled = true;
  const fake: FakeRunner = {
    runnerId,
    bootId,
    publicKey,
    sessions: [],
    deleted: null,
    freeze: () => void (frozen = true),
    stop: async () => {
      worker.shutdown();
      await done;
      await connection.close();
    },
  };
  const status = (): RunnerLiveStatus => ({
    runnerId,
    bootId,
    version: 'test-1.0',
    drivers: ['process'],
    slots: 2,
    free: 2,
    accepting: enabled,
    running: ['run/x/1/build'],
    at: new Date().toISOString(),
  });
  const worker = await Worker.create({
    connection,
    namespace: 'default',
    taskQueue: runnerTaskQueue(name),
    dataConverter,
    shutdownGraceTime: '2s',
    activities: {
      async runnerSession(req: SessionRequest): Promise<SessionEnd> {
        fake.sessions.push(req);
        if (req.delete) {
          fake.deleted = req.delete;
          return { reason: 'deleted', status: status() };
        }
        enabled = req.enabled;
        const ctx = Context.current();
        if (frozen) {
          // Hung: it takes the session but never reports (until its worker shuts down).
          await ctx.cancelled.catch(() => undefined);
          return { reason: 'renew', status: status() };
        }
        ctx.heartbeat(status());
        await h.client.workflow
          .getHandle(runnerWorkflowId(name))
          .signal(sessionOnlineSignal, { runnerId, bootId, generation: req.generation });
        const beat = setInterval(() => {
          if (!frozen) ctx.heartbeat(status());
        }, req.settings.heartbeatMs);
        try {
          await ctx.cancelled;
        } catch {
          // cancelled: a new generation, or this worker shutting down
        } finally {
          clearInterval(beat);
        }
        return { reason: 'renew', status: status() };
      },
      async pingRunner(): Promise<RunnerLiveStatus> {
        return status();
      },
    },
  });
  const done = worker.run();
  return fake;
}

/** What the last wait below read: a timeout's error shows it. */
const WAIT = { timeoutMs: 40_000, everyMs: 250 };

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RunfleetError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

/** `temporal workflow show` of the runner's workflow, as JSON with every payload decoded. */
function history(name: string): string {
  const text = execFileSync(
    join(projectRoot, '.tools', 'bin', 'temporal'),
    [
      'workflow',
      'show',
      '--address',
      h.address,
      '--namespace',
      'default',
      '--workflow-id',
      runnerWorkflowId(name),
      '--output',
      'json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.stringify(JSON.parse(text), (key, value: unknown) =>
    key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
  );
}

async function registered(name: string, settings: Partial<RunnerSettings> = FAST, temporary = false) {
  const created = await admin.create({ name, pool: 'linux', settings, temporary, by: 'test' });
  const fake = await startFakeRunner(name);
  const grant = await admin.register(
    name,
    registerRequest(
      created.token,
      name,
      { runnerId: fake.runnerId, publicKey: fake.publicKey },
      {
        version: 'test-1.0',
        drivers: ['process'],
        hostname: 'fake-host',
      },
    ),
  );
  return { created, fake, grant };
}

const ready = (name: string) =>
  untilRead(
    `${name} ready with live status`,
    async () => await admin.describe(name),
    (v) => v.record.status === 'ready' && v.live !== null,
    WAIT,
  );

describe('runner registry', () => {
  it('create shows the token once; only its public key is in the history; a registered runner cannot be created again', async () => {
    const name = uniqueName('rc');
    const created = await admin.create({ name, pool: 'linux', labels: { arch: 'x64' }, by: 'test' });
    expect(created.token).toMatch(/^rfr_[a-f0-9]{12}_[A-Za-z0-9_-]+$/);
    expect(created.record.status).toBe('registered');
    expect(created.record.token).toMatchObject({ id: created.tokenId, used: false, revoked: false });
    const shown = history(name);
    expect(shown).not.toContain(created.token);
    expect(shown).not.toContain(tokenSecret(created.token));
    // Only the token's public key is there, in the grant (never a hash to try tokens against).
    expect(shown).toContain(created.record.token?.key ?? 'no key');

    // Not registered yet: create again issues a new token (the old one dies).
    const again = await admin.create({ name, pool: 'linux', by: 'test' });
    expect(again.tokenId).not.toBe(created.tokenId);
    const fake = await startFakeRunner(name);
    try {
      const old = await codeOf(
        admin.register(
          name,
          registerRequest(
            created.token,
            name,
            { runnerId: fake.runnerId, publicKey: fake.publicKey },
            {
              version: '1',
              drivers: ['process'],
              hostname: 'h',
            },
          ),
        ),
      );
      expect(old).toEqual({ code: 'TokenRejected', message: 'token rejected: unknown token' });
      await admin.register(
        name,
        registerRequest(
          again.token,
          name,
          { runnerId: fake.runnerId, publicKey: fake.publicKey },
          {
            version: '1',
            drivers: ['process'],
            hostname: 'h',
          },
        ),
      );
      const conflict = await codeOf(admin.create({ name, pool: 'linux' }));
      expect(conflict.code).toBe('Conflict');
      expect(conflict.message).toContain(`runfleet runner token ${name}`);
    } finally {
      await fake.stop();
    }
  });

  it('refuses wrong, expired, revoked and used tokens without recording the update', async () => {
    const name = uniqueName('rt');
    const base = {
      runnerId: randomUUID(),
      publicKey: randomBytes(44).toString('base64'),
      version: '1',
      drivers: ['process' as const],
      hostname: 'h',
    };
    const created = await admin.create({ name, pool: 'linux', tokenTtlMs: 2_000, settings: FAST });
    const reg = (token: string) => registerRequest(token, name, base, base);
    expect(await codeOf(admin.register(name, reg(`rfr_000000000000_${'A'.repeat(43)}`)))).toEqual({
      code: 'TokenRejected',
      message: 'token rejected: unknown token',
    });
    await new Promise((r) => setTimeout(r, 2_500));
    const expired = await codeOf(admin.register(name, reg(created.token)));
    expect(expired.code).toBe('TokenRejected');
    expect(expired.message).toBe(`token rejected: expired at ${created.expiresAt}`);

    const fresh = await admin.issueToken(name, { by: 'test' });
    await admin.revokeToken(name, { by: 'test', reason: 'leaked' });
    expect(await codeOf(admin.register(name, reg(fresh.token)))).toEqual({
      code: 'TokenRejected',
      message: 'token rejected: revoked',
    });

    const good = await admin.issueToken(name, { by: 'test' });
    await admin.register(name, reg(good.token));
    expect(await codeOf(admin.register(name, reg(good.token)))).toEqual({
      code: 'TokenRejected',
      message: 'token rejected: already used',
    });

    // Rejected updates never reach history: one accepted register only.
    const events = (
      JSON.parse(history(name)) as {
        events: {
          eventType: string;
          workflowExecutionUpdateAcceptedEventAttributes?: { acceptedRequest?: { input?: { name?: string } } };
        }[];
      }
    ).events;
    const accepted = events
      .filter((e) => /UPDATE_ACCEPTED|UpdateAccepted/.test(e.eventType))
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name);
    expect(accepted.filter((n) => n === 'register')).toHaveLength(1);
    await admin.purge(name, { by: 'test', waitMs: 0 });
  });

  it('registers a runner, shows its live status, makes new generations on disable/enable, and pings it', async () => {
    const name = uniqueName('rr');
    const { fake, grant } = await registered(name);
    try {
      expect(grant).toMatchObject({
        kind: 'runfleet/key-delivery',
        name,
        runnerId: fake.runnerId,
        pool: 'linux',
        enabled: true,
      });
      expect(grant.keys).toHaveLength(1);
      const view = await ready(name);
      expect(view.live).toMatchObject({
        runnerId: fake.runnerId,
        version: 'test-1.0',
        slots: 2,
        running: ['run/x/1/build'],
      });
      expect(view.record.identity).toMatchObject({ runnerId: fake.runnerId, hostname: 'fake-host' });
      expect(view.record.token?.used).toBe(true);

      const g1 = fake.sessions.at(-1)?.generation ?? -1;
      const disabled = await admin.disable(name, { by: 'test', reason: 'maintenance' });
      expect(disabled).toMatchObject({ enabled: false, status: 'disabled' });
      await untilRead(
        'disabled session',
        () => fake.sessions.at(-1),
        (s) => s?.enabled === false && s.generation > g1,
        WAIT,
      );
      const g2 = fake.sessions.at(-1)?.generation ?? -1;
      await admin.enable(name, { by: 'test' });
      await untilRead(
        'enabled session',
        () => fake.sessions.at(-1),
        (s) => s?.enabled === true && s.generation > g2,
        WAIT,
      );
      const configured = await admin.settings(name, { slots: 8 }, { by: 'test' });
      expect(configured.settings.slots).toBe(8);
      await untilRead(
        'new settings',
        () => fake.sessions.at(-1),
        (s) => s?.settings.slots === 8,
        WAIT,
      );
      expect((await codeOf(admin.settings(name, { slots: 0 }))).message).toMatch(/slots/);
      expect((await codeOf(admin.settings(name, { bogus: 1 } as never))).message).toMatch(/bogus/);

      const reply = await admin.ping(name);
      expect(reply.status.runnerId).toBe(fake.runnerId);
      expect(reply.roundTripMs).toBeGreaterThanOrEqual(0);

      // One session once the runner has seen the last cancel (on its next heartbeat).
      const sessions = await untilRead(
        'one session',
        async () => await admin.sessions(name),
        (s) => s.length === 1,
        WAIT,
      );
      expect(sessions[0]?.state).toBe('started');
      expect(sessions[0]?.generation).toBe(fake.sessions.at(-1)?.generation);

      // Idle cost: heartbeats add no history, so a quiet runner costs no workflow task at all.
      const handle = h.client.workflow.getHandle(runnerWorkflowId(name));
      const tasks = async () =>
        ((await handle.fetchHistory()).events ?? []).filter(
          (e) => String(e.eventType) === '7' || e.workflowTaskCompletedEventAttributes,
        ).length;
      await new Promise((r) => setTimeout(r, 2_000)); // the last change's workflow tasks settle
      const before = await tasks();
      await new Promise((r) => setTimeout(r, 15_000));
      const quietTasks = (await tasks()) - before;
      console.log(`workflow tasks of a ready runner in 15 s of heartbeats: ${quietTasks}`);
      expect(quietTasks).toBe(0);

      const page = await untilRead(
        'listed',
        async () => await admin.list({ pool: 'linux' }),
        (p) => p.runners.some((r) => r.name === name),
        WAIT,
      );
      expect(page.runners.find((r) => r.name === name)).toMatchObject({
        status: 'ready',
        enabled: true,
        running: 1,
        version: 'test-1.0',
      });
    } finally {
      await fake.stop();
    }
  });

  it('goes idle without heartbeats, lost when the session is not taken, ready when the runner is back; ping fails clearly', async () => {
    const name = uniqueName('rl');
    const { fake } = await registered(name);
    await ready(name);
    const frozenAt = Date.now();
    fake.freeze();
    const idle = await untilRead(
      'idle',
      async () => await admin.get(name),
      (r) => r.status === 'idle',
      WAIT,
    );
    const idleAfter = Date.now() - frozenAt;
    expect(idle.reason).toBe('no session heartbeat for 4s');
    // A stuck runner that keeps taking sessions stays idle (it is there, but says nothing).
    await new Promise((r) => setTimeout(r, 6_000));
    expect((await admin.get(name)).status).toBe('idle');
    const stoppedAt = Date.now();
    await fake.stop();
    const lost = await untilRead(
      'lost',
      async () => await admin.get(name),
      (r) => r.status === 'lost',
      WAIT,
    );
    const lostAfter = Date.now() - stoppedAt;
    expect(lost.reason).toMatch(/no session taken for 8s/);
    console.log(`idle ${idleAfter} ms after the last heartbeat call, lost ${lostAfter} ms after the runner stopped`);
    // Heartbeat timeout 4 s (+ up to 3.2 s of SDK heartbeat throttling); lost: 4 s + 8 s at most, plus slack for a busy machine.
    expect(idleAfter).toBeLessThan(15_000);
    expect(lostAfter).toBeLessThan(25_000);

    const t0 = Date.now();
    const unanswered = await codeOf(admin.ping(name));
    expect(unanswered.code).toBe('ComponentUnavailable');
    expect(unanswered.message).toMatch(new RegExp(`runner ${name} did not answer a ping in 10s \\(status lost since `));
    expect(Date.now() - t0).toBeLessThan(20_000);

    const back = await startFakeRunner(name, { runnerId: fake.runnerId, publicKey: fake.publicKey });
    try {
      await admin.connect(name, {
        runnerId: back.runnerId,
        bootId: back.bootId,
        version: 'test-1.0',
        drivers: ['process'],
        hostname: 'fake-host',
      });
      const view = await ready(name);
      expect(view.record.bootId).toBe(back.bootId);
      expect(view.record.history.map((e) => e.status)).toEqual(expect.arrayContaining(['ready', 'idle', 'lost']));
    } finally {
      await back.stop();
    }
  });

  it('purges: runs with lost tasks are told, a connected runner wipes itself, the workflow ends', async () => {
    const name = uniqueName('rp');
    const { fake } = await registered(name);
    // A run that records the `runnerPurged` signal: a tiny workflow on this file's control queue.
    const run = await h.client.workflow.start('runWorkflow', {
      taskQueue: h.controlQueue,
      workflowId: `run/test/${uniqueName('p')}`,
      args: [
        {
          spec: {
            name: 'waits',
            group: '/test',
            tasks: [{ name: 'gate', steps: ['true'], pool: 'nobody-serves-this' }],
          },
        },
      ],
    });
    try {
      await ready(name);
      await h.client.workflow
        .getHandle(runnerWorkflowId(name))
        .signal(taskLostSignal, { runWorkflowId: run.workflowId, task: 'gate', attempt: 1 });
      await untilRead(
        'lost task recorded',
        async () => await admin.get(name),
        (r) => r.lostTasks.length === 1,
        WAIT,
      );
      const result = await admin.purge(name, { by: 'test', reason: 'decommissioned' });
      expect(result.record.status).toBe('deleted');
      expect(result.final?.status).toBe('deleted');
      expect(fake.deleted).toEqual({ by: 'test', reason: 'decommissioned' });
      expect(result.final?.history.map((e) => e.reason)).toEqual(
        expect.arrayContaining(['told 1 of 1 runs with lost tasks that the runner is gone', 'the runner wiped itself']),
      );
      const runHistory = await run.fetchHistory();
      const signals = (runHistory.events ?? []).filter(
        (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'runnerPurged',
      );
      expect(signals).toHaveLength(1);
      expect((await admin.describe(name)).execution).toBe('COMPLETED');
      expect(await codeOf(admin.enable(name))).toMatchObject({ code: 'NotFound' });
      // The name can be used again.
      const again = await admin.create({ name, pool: 'linux' });
      expect(again.record.status).toBe('registered');
      await admin.purge(name, { by: 'test', waitMs: 0 });
    } finally {
      await run.terminate('test over').catch(() => undefined);
      await fake.stop();
    }
  });

  it('purges a temporary runner once it is lost', async () => {
    const name = uniqueName('rtmp');
    const { fake } = await registered(name, FAST, true);
    await ready(name);
    await fake.stop();
    const final = await untilRead(
      'purged',
      async () => await admin.describe(name),
      (v) => v.execution === 'COMPLETED',
      { ...WAIT, timeoutMs: 60_000 },
    );
    expect(final.record.status).toBe('deleted');
    expect(final.record.reason).toBe('temporary runner gone');
  });

  it('names unknown runners and bad input', async () => {
    expect(await codeOf(admin.describe('no-such-runner-here'))).toEqual({
      code: 'NotFound',
      message: 'no runner no-such-runner-here (runfleet runner list)',
    });
    expect((await codeOf(admin.create({ name: 'bad name', pool: 'linux' }))).code).toBe('InvalidArgument');
    expect((await codeOf(admin.create({ name: 'ok', pool: 'linux', tokenTtlMs: 10 }))).message).toMatch(/--token-ttl/);
  });
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, h, { RUNFLEET_OPERATOR_KEY_FILE: TEST_OPERATOR_KEY_FILE });
}

describe('runfleet runner (CLI)', () => {
  it('creates with a snippet, refuses bad input with exit 2, and manages a registered runner', async () => {
    const name = uniqueName('cli');
    const created = await cli([
      'runner',
      'create',
      name,
      '--pool',
      'linux',
      '--label',
      'arch=x64',
      '--token-ttl',
      '2h',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const shown = JSON.parse(created.stdout) as { token: string; command: string; env: Record<string, string> };
    expect(shown.command).toBe(
      `runfleet runner serve --address ${h.address} --namespace default --name ${name} --pool linux --token ${shown.token}`,
    );
    expect(shown.env).toEqual({
      TEMPORAL_ADDRESS: h.address,
      TEMPORAL_NAMESPACE: 'default',
      RUNFLEET_RUNNER_TOKEN: shown.token,
    });

    const fake = await startFakeRunner(name);
    try {
      await admin.register(
        name,
        registerRequest(
          shown.token,
          name,
          { runnerId: fake.runnerId, publicKey: fake.publicKey },
          {
            version: 'test-1.0',
            drivers: ['process'],
            hostname: 'cli-host',
          },
        ),
      );
      const again = await cli(['runner', 'create', name, '--pool', 'linux']);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(`runfleet runner token ${name}`);

      const disabled = await cli(['runner', 'disable', name, '--reason', 'maintenance']);
      expect(disabled.code, disabled.stderr).toBe(0);
      expect(disabled.stdout).toContain('disabled (status disabled)');
      const settings = await cli(['runner', 'settings', name, '--set', 'slots=6', '--set', 'evictionMs=2m']);
      expect(settings.code, settings.stderr).toBe(0);
      expect(settings.stdout).toMatch(/slots\s+6/);
      expect(settings.stdout).toMatch(/evictionMs\s+120000/);
      const badSetting = await cli(['runner', 'settings', name, '--set', 'slotz=6']);
      expect(badSetting.code).toBe(2);
      expect(badSetting.stderr).toContain('slotz');

      await untilRead(
        'session',
        async () => await admin.describe(name),
        (v) => v.live !== null,
        WAIT,
      );
      const described = await cli(['runner', 'describe', name]);
      expect(described.code, described.stderr).toBe(0);
      expect(described.stdout).toContain(`runner ${name}  pool linux  status disabled`);
      expect(described.stdout).toContain('live:');
      expect(described.stdout).toContain('disabled: maintenance');

      const listed = await untilRead(
        'listed',
        async () => await cli(['runner', 'list', '--pool', 'linux', '--json']),
        (r) => r.stdout.includes(`"name": "${name}"`),
        WAIT,
      );
      expect(listed.code).toBe(0);
      const table = await cli(['runner', 'list', '--status', 'disabled']);
      expect(table.stdout).toMatch(/NAME\s+POOL\s+STATUS\s+ENABLED\s+LAST SEEN\s+VERSION\s+RUNNING/);

      const ping = await cli(['runner', 'ping', name]);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stdout).toContain(`runner ${name} answered in`);

      const noTty = await cli(['runner', 'purge', name]);
      expect(noTty.code).toBe(2);
      expect(noTty.stderr).toContain('--yes');
      const purged = await cli(['runner', 'purge', name, '--yes', '--reason', 'done']);
      expect(purged.code, purged.stderr).toBe(0);
      expect(purged.stdout).toContain(`runner ${name} purged: the runner wiped itself`);
    } finally {
      await fake.stop();
    }

    const unknown = await cli(['runner', 'describe', 'nobody-by-this-name']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('runfleet: no runner nobody-by-this-name (runfleet runner list)');
    const badLabel = await cli(['runner', 'create', 'x1', '--pool', 'linux', '--label', 'nokey']);
    expect(badLabel.code).toBe(2);
    expect(badLabel.stderr).toContain('--label');
    const badTtl = await cli(['runner', 'create', 'x1', '--pool', 'linux', '--token-ttl', 'soon']);
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toContain('--token-ttl');
  });
});
