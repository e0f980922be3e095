/**
 * Task outputs: small key-values a task writes to the file `$RUNFLEET_OUTPUT` names (`KEY=value`
 * lines, like GitHub's `$GITHUB_OUTPUT`). They travel in the task's result (signed by its runner,
 * encrypted like every payload), the run keeps them in the task's state (`run show`), and the
 * tasks that depend on it get them as `RUNFLEET_NEEDS_<TASK>_<KEY>` variables. Pure and
 * sandbox-safe: the runner parses with it and the run workflow checks again (a runner's word is
 * bounded like a run author's).
 */
import { utf8Length } from '../bytes';

export const OUTPUT_LIMITS = {
  /** Keys per task: outputs are a version, a digest, a URL; not a data channel. */
  maxKeys: 16,
  /** Bytes of one task's keys and values together, UTF-8. */
  maxBytes: 1024,
  /**
   * Bytes of every task's outputs in one run: the run's state travels whole into the next history
   * when it continues as new, and must stay far below Temporal's 2 MiB payload limit.
   */
  maxRunBytes: 256 * 1024,
  /** The output file read at most: more than this is refused without being parsed. */
  maxFileBytes: 64 * 1024,
} as const;

/** The file a task writes its outputs to, in its workspace (removed before each attempt). */
export const OUTPUT_FILE = '.runfleet-output';

const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Keys that reach an object's prototype when assigned: refused as in every file users give. */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype'];

export function outputsBytes(outputs: Record<string, string>): number {
  return Object.entries(outputs).reduce((sum, [k, v]) => sum + utf8Length(k) + utf8Length(v), 0);
}

/** What is wrong with these outputs (a task's, or a runner's claim of them), or null. */
export function outputsProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'outputs are not key-values';
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > OUTPUT_LIMITS.maxKeys)
    return `${entries.length} keys; a task has at most ${OUTPUT_LIMITS.maxKeys}`;
  for (const [key, v] of entries) {
    if (!KEY_RE.test(key))
      return `key "${key.slice(0, 64)}" is not 1-64 letters, digits and "_" (not starting with a digit)`;
    if (FORBIDDEN_KEYS.includes(key)) return `key "${key}" is not allowed`;
    if (typeof v !== 'string') return `the value of ${key} is not text`;
    if (v.includes('\u0000')) return `the value of ${key} holds a NUL character`;
  }
  const bytes = outputsBytes(value as Record<string, string>);
  if (bytes > OUTPUT_LIMITS.maxBytes) return `${bytes} bytes; a task's outputs are at most ${OUTPUT_LIMITS.maxBytes}`;
  return null;
}

/** The outputs in a task's output file: `KEY=value` lines (blank lines skipped; a later key wins). */
export function parseOutputs(text: string): { outputs: Record<string, string> } | { problem: string } {
  const entries: [string, string][] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(/\r$/, '');
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { problem: `line ${i + 1} is not KEY=value` };
    entries.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  // Own properties whatever the key (an assignment of "__proto__" would be lost, not refused).
  const outputs = Object.fromEntries(entries);
  const problem = outputsProblem(outputs);
  return problem ? { problem } : { outputs };
}

/** `test (node=20)` and `version` -> `RUNFLEET_NEEDS_TEST__NODE_20__VERSION`. */
export function outputVariable(task: string, key: string): string {
  return `RUNFLEET_NEEDS_${task.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_${key.toUpperCase()}`;
}

/** The variables a task gets from the outputs of the tasks it depends on. */
export function needsEnv(needs: Record<string, Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [task, outputs] of Object.entries(needs)) {
    for (const [key, value] of Object.entries(outputs)) env[outputVariable(task, key)] = value;
  }
  return env;
}

/**
 * The `needs` of a task's execution: the outputs of the tasks it depends on that have any.
 * Absent when none has (the request is then what it was before outputs existed).
 */
export function neededOutputs(
  depends: readonly (string | { task: string })[],
  tasks: Readonly<Record<string, { outputs?: Record<string, string> }>>,
): { needs?: Record<string, Record<string, string>> } {
  const needs: Record<string, Record<string, string>> = {};
  for (const d of depends) {
    const name = typeof d === 'string' ? d : d.task;
    const outputs = tasks[name]?.outputs;
    if (outputs && Object.keys(outputs).length > 0) needs[name] = outputs;
  }
  return Object.keys(needs).length > 0 ? { needs } : {};
}
