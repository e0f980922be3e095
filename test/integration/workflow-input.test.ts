/**
 * A run workflow started directly (as `temporal workflow start` does) with bad input fails at
 * once with a non-retryable error that names the problem; no workflow task retries.
 */
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKFLOW_TYPES } from '../../src/ids';
import type { RunState } from '../../src/types';
import { stopRunSignal } from '../../workflows/run-messages';
import { startHarness, type Harness } from '../helpers/harness';
import { WORKFLOW_STACK_TRACE_FRAMES } from '../../workflows/stack-trace-limit';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

const ok = (name: string, extra: Record<string, unknown> = {}) => ({ name, steps: ['true'], ...extra });
const many = (n: number) => Array.from({ length: n }, (_, i) => ok(`t${i}`));

const cases: { title: string; input: unknown; type: string; mentions: string[] }[] = [
  { title: 'no argument', input: undefined, type: 'InvalidWorkflowInput', mentions: ['takes one argument'] },
  { title: 'a string', input: 'hello', type: 'InvalidWorkflowInput', mentions: ['"hello"'] },
  {
    title: 'an empty run',
    input: { spec: { name: 'x', tasks: [] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks: a run needs at least one task'],
  },
  {
    title: 'duplicate names',
    input: { spec: { name: 'x', tasks: [ok('a'), ok('a')] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks.a.name: duplicate task name "a"'],
  },
  {
    title: 'an unknown dependency',
    input: { spec: { name: 'x', tasks: [ok('a', { depends: ['ghost'] })] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks.a.depends[0]: unknown task "ghost"'],
  },
  {
    title: 'a self-dependency',
    input: { spec: { name: 'x', tasks: [ok('a', { depends: ['a'] })] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks.a.depends[0]: task "a" depends on itself'],
  },
  {
    title: 'a cycle',
    input: {
      spec: {
        name: 'x',
        tasks: [ok('a', { depends: ['c'] }), ok('b', { depends: ['a'] }), ok('c', { depends: ['b'] })],
      },
    },
    type: 'InvalidRunSpec',
    mentions: ['dependency cycle:', 'a -> b -> c -> a'],
  },
  {
    title: 'an unknown field',
    input: { spec: { name: 'x', tasks: [ok('a', { retries: 3 })] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks.a: unknown field "retries"'],
  },
  {
    title: 'too many tasks',
    input: { spec: { name: 'x', tasks: many(10_001) } },
    type: 'InvalidRunSpec',
    mentions: ['tasks: a run has at most 10000 tasks'],
  },
  {
    title: 'a forged resume (task states a continue-as-new never wrote)',
    input: {
      spec: { name: 'x', tasks: [ok('a')] },
      resume: { admitted: true, state: { id: 'x', phase: 'running', tasks: { a: { status: 'success' } } } },
    },
    type: 'InvalidWorkflowInput',
    mentions: ['invalid resume', 'never by a start'],
  },
  {
    title: 'a patch gate this worker does not know (patches it would have to guess)',
    input: { spec: { name: 'x', tasks: [ok('a')] }, patchGate: 'run-patches-2099' },
    type: 'InvalidWorkflowInput',
    mentions: ['invalid patchGate: "run-patches-2099" is not a gate this worker knows', 'run-patches-2026-12b'],
  },
  {
    title: 'a patch gate that is not a name',
    input: { spec: { name: 'x', tasks: [ok('a')] }, patchGate: { covers: ['runnerProofs'] } },
    type: 'InvalidWorkflowInput',
    mentions: ['invalid patchGate: {"covers":["runnerProofs"]}'],
  },
  {
    title: 'an env value with a NUL',
    input: { spec: { name: 'x', env: { A: 'x\u0000y' }, tasks: [ok('a')] } },
    type: 'InvalidRunSpec',
    mentions: ['env.A: an environment value cannot hold a NUL character'],
  },
  {
    title: 'a bad timeout',
    input: { spec: { name: 'x', tasks: [ok('a', { timeout: 'soon' })] } },
    type: 'InvalidRunSpec',
    mentions: ['tasks.a.timeout: "soon" is not a duration'],
  },
  {
    title: 'a restart keeping an unknown task',
    input: {
      spec: { name: 'x', tasks: [ok('a')] },
      restart: {
        of: 'run/x/1',
        keep: { ghost: { runner: 'r', startedAt: null, finishedAt: null, exitCode: 0, attempts: 1 } },
      },
    },
    type: 'InvalidWorkflowInput',
    mentions: ['kept tasks not in the spec: ghost'],
  },
  {
    title: 'bad options',
    input: { spec: { name: 'x', tasks: [ok('a')] }, options: { heartbeatTimeout: 'never' } },
    type: 'InvalidWorkflowInput',
    mentions: ['options.heartbeatTimeout'],
  },
];

describe('direct workflow start with bad input', () => {
  it.each(cases)('fails at once on $title', async ({ input, type, mentions }) => {
    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: h.controlQueue,
      workflowId: `run/test/bad/${Math.random().toString(36).slice(2)}`,
      args: input === undefined ? [] : [input],
    });
    const err = await handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe(type);
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    for (const m of mentions) expect(cause!.message).toContain(m);

    const { events } = await handle.fetchHistory();
    const failedTasks = (events ?? []).filter(
      (e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    );
    expect(failedTasks).toHaveLength(0);
  });
});

/**
 * An entity workflow started directly with what a start may not carry (workflows/start-checks.ts):
 * the state it carries across continue-as-new (a runner record with a copied admission, fleet
 * instance records it would terminate, a changegroup's admitted runs), or an option out of range
 * (a changegroup continuing as new at every event or probing in a hot loop, an EC2 call with no
 * time). Each start fails at once, naming the field.
 */
const refusedStarts: { title: string; type: string; workflowId: string; input: unknown; message: string }[] = [
  {
    title: "a runner's registry workflow with a resume",
    type: WORKFLOW_TYPES.runner,
    workflowId: 'runner/forged',
    input: {
      name: 'forged',
      pool: 'ci',
      resume: { record: { name: 'forged', pool: 'deploy', status: 'ready' }, generation: 1 },
    },
    message:
      "invalid resume: it is set by the runner's registry workflow itself when it continues as new, never by a start",
  },
  {
    title: 'a fleet workflow with a state',
    type: WORKFLOW_TYPES.fleet,
    workflowId: 'fleet/forged',
    input: { name: 'forged', state: { name: 'forged', records: [{ instanceId: 'i-0123456789abcdef0' }] } },
    message: 'invalid state: it is set by the fleet workflow itself when it continues as new, never by a start',
  },
  {
    title: 'a fleet workflow whose EC2 calls have no time',
    type: WORKFLOW_TYPES.fleet,
    workflowId: 'fleet/hasty',
    input: { name: 'hasty', options: { ec2TimeoutMs: 0 } },
    message: 'invalid options.ec2TimeoutMs: 0 is not a whole number from 1000 to 3600000',
  },
  {
    title: 'a changegroup workflow with a state',
    type: 'changegroupWorkflow',
    workflowId: 'changegroup/forged',
    input: { name: 'forged', state: { name: 'forged', active: ['run/x/1'] } },
    message: 'invalid state: it is set by the changegroup workflow itself when it continues as new, never by a start',
  },
  {
    title: 'a changegroup workflow that would continue as new at every event',
    type: 'changegroupWorkflow',
    workflowId: 'changegroup/looping',
    input: { name: 'looping', continueAsNewAt: 0 },
    message: 'invalid continueAsNewAt: 0 is not a whole number from 5 to 50000',
  },
  {
    title: 'a changegroup workflow that would probe its runs in a hot loop',
    type: 'changegroupWorkflow',
    workflowId: 'changegroup/probing',
    input: { name: 'probing', probeEveryMs: '1ms' },
    message: 'invalid probeEveryMs: "1ms" is not a whole number from 100 to 86400000',
  },
];

describe('an entity workflow started directly with what a start may not carry', () => {
  it.each(refusedStarts)('fails at once: $title', async ({ type, workflowId, input, message }) => {
    const handle = await h.client.workflow.start(type, {
      taskQueue: h.controlQueue,
      workflowId: `${workflowId}-${Math.random().toString(36).slice(2)}`,
      args: [input],
    });
    const err = await handle.result().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause.type).toBe('InvalidWorkflowInput');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toBe(message);
    const { events } = await handle.fetchHistory();
    const types = (events ?? []).map((e) => e.eventType);
    expect(types).not.toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED);
    // Nothing was started on its behalf: no activity, child, timer or signal out.
    expect(types).not.toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED);
    expect(types).not.toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_STARTED);
  });
});

/**
 * A spec with every field the schema knows. The run spec's schemas are built once per worker
 * thread and shared by its runs (a preloaded module, src/codec/index.ts), beside modules the SDK
 * deep-freezes: every field's check must still work there, run after run.
 */
const everyField = {
  name: 'every field',
  group: '/test/sandbox',
  env: { A: '1' },
  secret_env: ['A'],
  tasks: [
    {
      name: 'build',
      steps: ['echo ${{ matrix.node }}', { name: 'two', run: 'true' }],
      env: { B: '2' },
      secret_env: ['B'],
      artifacts: ['dist/**'],
      cache: { key: 'deps-{{ hash package-lock.json }}', paths: ['node_modules'] },
      working_dir: 'src',
      pool: 'p',
      timeout: '10m',
      idempotent: true,
      retry: { limit: 2, backoff: '5s', on: ['failed'] },
      runs_on: { os: 'linux', gpu: true },
      matrix: { node: ['20', 22], os: ['linux'] },
    },
    {
      name: 'deploy',
      steps: ['true'],
      driver: 'kubernetes',
      image: 'registry.local/app:1',
      pull: 'always',
      resources: { memory: '512Mi', cpu: '500m' },
      node_selector: { 'kubernetes.io/arch': 'amd64' },
      service_account: 'deployer',
      pool: 'k',
      depends: ['build', { task: 'lint', conditions: ['on_failure', 'on_success'] }],
      needs_approval: true,
      ignore_failure: true,
    },
    {
      name: 'lint',
      steps: ['true'],
      driver: 'docker',
      image: 'alpine:3',
      run_as_root: true,
      resources: { pids: 100 },
      pool: 'd',
    },
    { name: 'test', steps: ['true'], depends: ['build'], artifacts_from: ['build'] },
  ],
};

describe('direct workflow start with good input', () => {
  it('parses and expands a spec using every field in the workflow, run after run', async () => {
    for (const i of [1, 2, 3]) {
      // Stopped from its first workflow task on: it parses its input, dispatches nothing and ends.
      const handle = await h.client.workflow.signalWithStart('runWorkflow', {
        taskQueue: h.controlQueue,
        workflowId: `run/test/every-field/${i}-${Math.random().toString(36).slice(2)}`,
        args: [{ spec: everyField, options: { heartbeatTimeout: '20s', runner: 'r1' } }],
        signal: stopRunSignal,
        signalArgs: [{ reason: 'parsed only', by: 'test' }],
      });
      const state = (await handle.result()) as RunState;
      expect(state.result).toBe('stopped');
      // The matrix task expanded into its two cells, beside the three others.
      expect(Object.keys(state.tasks)).toHaveLength(5);
      expect(Object.keys(state.tasks).filter((name) => name.startsWith('build'))).toHaveLength(2);
    }
  });
});

describe('stack traces in workflow code', () => {
  it(`keep ${WORKFLOW_STACK_TRACE_FRAMES} frames: the stack-trace query still answers, with two frames a promise`, async () => {
    // Waits for a slot on a pool nobody serves: a run with promises pending.
    const handle = await h.client.workflow.start('runWorkflow', {
      taskQueue: h.controlQueue,
      workflowId: `run/test/stack-trace/${Math.random().toString(36).slice(2)}`,
      args: [{ spec: { name: 'stack-trace', tasks: [ok('a', { pool: 'nobody-serves-this' })] } }],
    });
    try {
      const trace = await handle.query<string>('__stack_trace');
      const stacks = trace.split('\n\n').filter((s) => s.trim() !== '');
      expect(stacks.length).toBeGreaterThan(0);
      // The promise hook's own two frames (its callback, node's promise_hooks) are cut from each.
      const frames = stacks.map((s) => s.split('\n').filter((line) => /^\s+at /.test(line)).length);
      expect(Math.max(...frames)).toBe(WORKFLOW_STACK_TRACE_FRAMES - 2);
    } finally {
      await handle.terminate('test over');
    }
  });
});
