/**
 * The lost-task protocol. A task whose runner stopped heartbeating is `lost`: not final and not
 * started again (it may have run). The runner is the source of truth, so the run asks it
 * (`lookupTask` on its own queue). The runner records every execution before starting it, so its
 * answer is the truth:
 * - never received (the server handed the task out, the poll response never arrived): it
 *   refuses that attempt from now on, and the task is dispatched again as a new attempt. It
 *   never ran, so at most once holds;
 * - ended there (its completion did not reach the server): that outcome settles the task;
 * - recorded (running, or being reported): the runner's report (`taskReport`) settles it.
 * No answer in LOOKUP_WAIT_MS (the runner is away): asked again; a runner that comes back
 * answers the waiting question first thing. A question never holds the run.
 */
import { CancellationScope, isCancellation, log, sleep } from '@temporalio/workflow';
import { runnerTaskQueue } from '../../src/ids';
import { formatDuration } from '../../src/duration';
import { giveBackTask, loseTask } from '../../src/run/transitions';
import type { TaskLookup } from '../../activities/types';
import type { TaskState } from '../../src/types';
import { taskFoundSignal, taskLostSignal } from '../runner-messages';
import { fleetLease, lookupOn } from './activities';
import type { RunContext } from './context';
import { describeError, timeoutType } from './failures';
import { settleOutcome } from './outcomes';

/**
 * A question waits this long on the runner's queue, then is asked again. Failed answers are
 * asked again after LOOKUP_PAUSE_MS, doubling up to LOOKUP_WAIT_MS.
 */
const LOOKUP_WAIT_MS = 10 * 60_000;
const LOOKUP_PAUSE_MS = 60_000;

export interface LostTasks {
  /**
   * Marks the task lost, tells its runner's registry, and asks the runner (`always`: also in
   * runs from before the `askRunner` patch, as a refused result always did).
   */
  lose(name: string, reason: string, ask?: 'always'): void;
  /** Asks the runner about a task already lost (a run that continued as new asks again). */
  ask(name: string): void;
}

export function createLostTasks(ctx: RunContext): LostTasks {
  return {
    lose(name, reason, ask) {
      const t = ctx.taskState(name);
      loseTask(t, reason, ctx.now());
      ctx.tellRegistry(taskLostSignal, t.runner ?? '', name, t.attempts);
      if (ask === 'always' || ctx.patches.has('askRunner')) ctx.track(() => askRunner(name), { task: name });
    },
    ask(name) {
      if (ctx.patches.has('askRunner')) ctx.track(() => askRunner(name), { task: name });
    },
  };

  async function askRunner(name: string): Promise<void> {
    const t = ctx.taskState(name);
    const attempt = t.attempts;
    const runner = t.runner;
    if (runner === null) return;
    const stillLost = () => t.status === 'lost' && t.attempts === attempt && t.runner === runner;
    let pause = LOOKUP_PAUSE_MS;
    try {
      for (let round = 1; stillLost(); round++) {
        const ask = lookupOn(runnerTaskQueue(runner), `lookup/${name}/${attempt}/${round}`, LOOKUP_WAIT_MS);
        let answer: TaskLookup;
        try {
          answer = await ask.lookupTask({ runId: ctx.state.id, task: name, attempt });
        } catch (err) {
          if (isCancellation(err)) throw err;
          if (timeoutType(err) !== 'SCHEDULE_TO_START') {
            // A runner that cannot answer (one older than the question): ask again later.
            log.info(`runner "${runner}" did not answer about task "${name}": ${describeError(err)}`);
            await sleep(pause);
            pause = Math.min(pause * 2, LOOKUP_WAIT_MS);
          }
          continue;
        }
        if (ctx.patches.has('runnerProofs')) {
          const refused = await ctx.proofs.check(
            {
              about: 'lookup',
              run: ctx.state.id,
              task: name,
              attempt,
              runner,
              known: answer.known,
              outcome: answer.known ? answer.outcome : null,
            },
            answer.proof,
          );
          if (!stillLost()) return;
          if (refused) {
            ctx.refuse(runner, name, refused);
            t.reason = `${refused}; asking again in ${formatDuration(pause)}`;
            await sleep(pause);
            pause = Math.min(pause * 2, LOOKUP_WAIT_MS);
            continue;
          }
        }
        if (!stillLost()) return;
        if (!answer.known) {
          giveBack(t, name, runner, attempt);
        } else if (answer.outcome) {
          settleOutcome(ctx, name, answer.outcome, `runner "${runner}" told it after the server lost track of it`);
          ctx.tellRegistry(taskFoundSignal, runner, name, attempt);
        }
        return;
      }
    } catch (err) {
      // The run (or this task) was stopped: it settles its lost tasks itself.
      if (!isCancellation(err)) throw err;
    }
  }

  /** A lost attempt its runner never received: the task is dispatched again (a new attempt). */
  function giveBack(t: TaskState, name: string, runner: string, attempt: number): void {
    giveBackTask(t, runner, attempt);
    ctx.redispatch(name);
    ctx.tellRegistry(taskFoundSignal, runner, name, attempt);
    const claim = ctx.lostClaims[name];
    if (claim) {
      delete ctx.lostClaims[name];
      ctx.notices.push(
        CancellationScope.nonCancellable(() => fleetLease.releaseFleetRunner(claim)).catch((err: unknown) =>
          log.info(`claim on ${claim.instanceId} not released: ${describeError(err)}`),
        ),
      );
    }
  }
}
