/** Run ids as people type them, and new ones. */
import { randomBytes } from 'node:crypto';
import { RunfleetError } from '../errors';
import { isRunWorkflowId, runWorkflowId } from '../ids';

/** The group of runs submitted without one (the run spec's default). */
export const DEFAULT_GROUP = '/default';

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const BASE36 = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * A short id that sorts by creation time: base36 milliseconds (8 characters until 2059) and
 * 4 random characters, so two submitters in the same millisecond do not collide.
 */
export function newRunId(now: number = Date.now()): string {
  const random = Array.from(randomBytes(4), (b) => BASE36[b % 36]).join('');
  return now.toString(36).padStart(8, '0') + random;
}

/** Checks an id given with `--id` / `{ id }`: it becomes the last segment of the workflow id. */
export function checkRunId(id: string): string {
  if (!RUN_ID_RE.test(id)) {
    throw new RunfleetError(
      'InvalidArgument',
      `run id "${id}" must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
  return id;
}

/**
 * The workflow id of a run, from what a person typed:
 * - `run/project/42/main/m3k2a9x1` (the workflow id, as `run submit` prints it): as is;
 * - `project/42/main/m3k2a9x1` or `/project/42/main/m3k2a9x1` (group and id): `run/` prepended;
 * - `m3k2a9x1` (an id alone): a run of the default group.
 */
export function resolveRunWorkflowId(ref: string): string {
  const trimmed = ref.trim();
  if (trimmed.length === 0) throw new RunfleetError('InvalidArgument', 'a run id must not be empty');
  if (isRunWorkflowId(trimmed)) return trimmed;
  if (trimmed.includes('/')) return `run/${trimmed.replace(/^\/+/, '')}`;
  return runWorkflowId(DEFAULT_GROUP, trimmed);
}
