/** Text renderings of runs for people: tables, progress, change lines. Pure functions. */
import type { RunSummary } from '../client';
import { formatDuration } from '../duration';
import type { RunState, TaskState } from '../types';

/**
 * C0 and C1 control characters (but newline and tab), DEL, and the bidirectional overrides, which
 * names, runner strings and reasons from other parties could use to move the cursor, recolour,
 * retitle or reorder a terminal: an escape sequence in a task's name must show, not act.
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Text safe to print: each control character as its JSON escape (`\x1b` shows as `\u001b`). */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table(header: string[], rawRows: string[][]): string {
  // Escaped before measuring, so a row with a control character stays aligned.
  const rows = rawRows.map((r) => r.map((c) => escapeControl(c).replace(/[\n\t]/g, ' ')));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)].join('\n');
}

/** `14:03:07` in local time, or `-`. */
export function clockTime(iso: string | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toTimeString().slice(0, 8);
}

/** `2025-01-31 14:03` in local time, or `-`. */
export function dateTime(iso: string | null): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Time between two instants (the second defaults to now), or `-` when it has not started. */
export function elapsed(from: string | null, to: string | null, now: number = Date.now()): string {
  if (!from) return '-';
  const end = to ? Date.parse(to) : now;
  const ms = Math.max(0, end - Date.parse(from));
  return formatDuration(ms);
}

export function taskStatusLabel(t: TaskState): string {
  if (t.status === 'pending' && t.approval.required && !t.approval.approvedAt) return 'awaiting approval';
  if (t.attempts > 1) return `${t.status} (attempt ${t.attempts})`;
  return t.status;
}

/**
 * What the REASON column says. A lost task names its runner and what would end the wait; the
 * state's own reason (the silence) stays in `run show --json`.
 */
export function taskReason(t: TaskState): string {
  if (t.status === 'lost') {
    const runner = t.runner ?? 'unknown';
    const since = t.lostAt ? ` since ${dateTime(t.lostAt)}` : '';
    return `lost on runner ${runner}${since}: waiting for the runner to report, or for \`runfleet runner purge ${runner}\``;
  }
  return t.reason ?? (t.approval.approvedBy ? `approved by ${t.approval.approvedBy}` : '');
}

export function runHeadline(state: RunState): string {
  const outcome =
    state.phase === 'finished' || state.phase === 'cancelled' ? `${state.phase}, ${state.result}` : state.phase;
  return `${state.id}  "${state.name}"  ${outcome}  (${elapsed(state.startedAt ?? state.createdAt, state.finishedAt)})`;
}

/** `3 tasks: 1 success, 1 running, 1 pending`. */
export function progressSummary(state: RunState): string {
  const tasks = Object.values(state.tasks);
  const counts = new Map<string, number>();
  for (const t of tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const parts = [...counts.entries()].map(([status, n]) => `${n} ${status}`);
  return `${tasks.length} task${tasks.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

/** The task table of `run show` and the live view of `run watch`. */
export function taskTable(state: RunState, now: number = Date.now()): string {
  const rows = Object.entries(state.tasks).map(([name, t]) => [
    name,
    taskStatusLabel(t),
    t.runner ?? '-',
    clockTime(t.startedAt),
    elapsed(t.startedAt, t.finishedAt, now),
    t.exitCode === null ? '-' : String(t.exitCode),
    taskReason(t),
  ]);
  return table(['TASK', 'STATUS', 'RUNNER', 'STARTED', 'DURATION', 'EXIT', 'REASON'], rows);
}

/** The full text of `run show`. */
export function runDetails(state: RunState, now: number = Date.now()): string {
  const lines = [
    `run      ${state.id}`,
    `name     ${state.name}`,
    `group    ${state.group}`,
    `phase    ${state.phase}`,
    `result   ${state.result}`,
    `created  ${dateTime(state.createdAt)}`,
    `started  ${dateTime(state.startedAt)}`,
    `finished ${dateTime(state.finishedAt)}${state.startedAt ? `  (${elapsed(state.startedAt, state.finishedAt, now)})` : ''}`,
  ];
  if (state.reason) lines.push(`reason   ${state.reason}`);
  return [...lines, '', taskTable(state, now), ...outputLines(state)].join('\n');
}

/** The tasks' outputs (`$RUNFLEET_OUTPUT`), a `TASK  KEY=value` line each; none when no task has any. */
function outputLines(state: RunState): string[] {
  const lines: string[] = [];
  for (const [name, t] of Object.entries(state.tasks)) {
    for (const [key, value] of Object.entries(t.outputs ?? {})) lines.push(`  ${name}  ${key}=${value}`);
    if (t.outputsDropped) lines.push(`  ${name}  (${t.outputsDropped})`);
  }
  // Written by tasks: shown with their control characters escaped.
  return lines.length > 0 ? ['', 'outputs', ...lines.map(escapeControl)] : [];
}

/** One line per task whose status changed since `prev` (every task when `prev` is null). */
export function taskChanges(prev: RunState | null, next: RunState): string[] {
  const out: string[] = [];
  for (const [name, t] of Object.entries(next.tasks)) {
    const before = prev?.tasks[name];
    if (before && before.status === t.status && before.reason === t.reason && before.runner === t.runner) continue;
    if (!before && t.status === 'pending' && !t.reason) continue;
    const where = t.runner ? ` on ${t.runner}` : '';
    const exit = t.exitCode !== null && t.status !== 'success' ? ` (exit ${t.exitCode})` : '';
    const why = t.status === 'lost' ? `: ${taskReason(t)}` : t.reason ? `: ${t.reason}` : '';
    out.push(`${clockTime(new Date().toISOString())} ${name} ${taskStatusLabel(t)}${where}${exit}${why}`);
  }
  return out;
}

export function runList(runs: RunSummary[]): string {
  if (runs.length === 0) return 'no runs';
  return table(
    ['RUN', 'NAME', 'PHASE', 'RESULT', 'STARTED', 'DURATION'],
    runs.map((r) => [r.id, r.name, r.phase, r.result, dateTime(r.startTime), elapsed(r.startTime, r.closeTime)]),
  );
}

/** A link to a run in the Temporal Web UI. */
export function webUiRunUrl(uiUrl: string, namespace: string, workflowId: string, runId?: string): string {
  const base = `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}

export function webUiWorkflowsUrl(uiUrl: string, namespace: string): string {
  return `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows`;
}
