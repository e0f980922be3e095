/**
 * Crash points, for tests: `RUNFLEET_CRASH_AT=<point>` on `runner serve` makes the runner kill
 * itself with SIGKILL at that instant of its first task execution that reaches it, as a `kill -9`
 * there would. `test/integration/crash-points.test.ts` starts a runner armed at each point, starts
 * it again unarmed, and checks that the task ran at most once and its true outcome was reported:
 * the session records hold at every step. Unset (production): `crashPoint` does nothing.
 *
 * - `recorded`: the session record is written, nothing of the task has started;
 * - `started`: the driver has started the task (its supervisor or container runs);
 * - `ended`: the task has ended, its outcome is not recorded yet;
 * - `closed`: the outcome is in the `done` marker, the record is gone, nothing reported yet.
 */
import { RunfleetError } from '../errors';

export const CRASH_POINTS = ['recorded', 'started', 'ended', 'closed'] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

let armed: CrashPoint | undefined;

/** Arms a crash point from `RUNFLEET_CRASH_AT` (absent: none); an unknown one is InvalidConfig. */
export function armCrashPoint(value: string | undefined): void {
  if (value === undefined || value === '') return;
  if (!(CRASH_POINTS as readonly string[]).includes(value)) {
    throw new RunfleetError(
      'InvalidConfig',
      `RUNFLEET_CRASH_AT: "${value}" is not a crash point (${CRASH_POINTS.join(', ')}); it is for tests only`,
    );
  }
  armed = value as CrashPoint;
}

/** The runner dies here, now, if armed at this point. */
export function crashPoint(point: CrashPoint): void {
  if (armed === point) process.kill(process.pid, 'SIGKILL');
}
