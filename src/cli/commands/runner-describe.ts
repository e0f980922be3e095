/** `runfleet runner describe NAME`: the runner's record, live status, session and status history. */
import type { Command } from 'commander';
import type { RunnerView } from '../../client/runners';
import { formatDuration } from '../../duration';
import { commandOutput, type CliContext } from '../context';
import { dateTime } from '../render';
import { withRunnerAdmin } from '../registry-context';

interface ScheduleLine {
  id: string;
  cron: string;
  next: string[];
  paused: boolean;
}

export function register(runner: Command, ctx: CliContext): void {
  runner
    .command('describe')
    .description('show a runner: identity, status, settings, live status, session, lost tasks and history')
    .argument('<name>', 'runner name')
    .option('--json', 'print JSON: {record, live, session, execution, schedules}')
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      const out = commandOutput(flags);
      await withRunnerAdmin(ctx, cmd, async (admin) => {
        const view = await admin.describe(name);
        const schedules = await runnerSchedules(admin, name);
        out.result({ ...view, schedules }, () => describe(view, schedules));
      });
    });
}

/**
 * SCHEDULES HOOK: the runner's cron schedules (src/runner/schedules.ts, `listRunnerSchedules`).
 * Loaded on use and best effort: describing a runner never fails because schedules could not be read.
 */
async function runnerSchedules(
  admin: { client: import('@temporalio/client').Client },
  name: string,
): Promise<ScheduleLine[] | null> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('../../runner/schedules') as {
      listRunnerSchedules?: (client: import('@temporalio/client').Client, runner: string) => Promise<unknown[]>;
    };
    if (typeof mod.listRunnerSchedules !== 'function') return null;
    const list = await mod.listRunnerSchedules(admin.client, name);
    return list.map((s) => {
      const o = s as { id?: unknown; cron?: unknown; next?: unknown; nextTimes?: unknown; paused?: unknown };
      const next = Array.isArray(o.nextTimes) ? o.nextTimes : Array.isArray(o.next) ? o.next : [];
      return { id: String(o.id ?? ''), cron: String(o.cron ?? ''), next: next.map(String), paused: o.paused === true };
    });
  } catch {
    return null;
  }
}

function describe(v: RunnerView, schedules: ScheduleLine[] | null): string {
  const r = v.record;
  const lines = [
    `runner ${r.name}  pool ${r.pool}  status ${r.status}${r.reason ? ` (${r.reason})` : ''}  ${r.enabled ? 'enabled' : 'disabled'}${r.temporary ? '  temporary' : ''}`,
    `labels:     ${
      Object.entries(r.labels)
        .map(([k, val]) => `${k}=${val}`)
        .join(' ') || '-'
    }`,
    ...(r.fleet ? [`fleet:      ${r.fleet.name}, instance ${r.fleet.instanceId} (fleet/${r.fleet.name})`] : []),
    `created:    ${dateTime(r.createdAt)}   last seen: ${dateTime(r.lastSeenAt)}`,
    `token:      ${r.token ? `${r.token.id} (expires ${dateTime(r.token.expiresAt)}${r.token.used ? ', used' : ''}${r.token.revoked ? ', revoked' : ''})` : '-'}`,
    r.identity
      ? `identity:   ${r.identity.runnerId} on ${r.identity.hostname || '-'}, version ${r.identity.version || '-'}, drivers ${r.identity.drivers.join(', ')}, registered ${dateTime(r.identity.registeredAt)}`
      : 'identity:   not registered yet',
    `settings:   slots ${r.settings.slots}, eviction ${formatDuration(r.settings.evictionMs)}, heartbeat ${formatDuration(r.settings.heartbeatMs)}, ping ${formatDuration(r.settings.pingMs)}, watchdog ${formatDuration(r.settings.watchdogMs)}`,
  ];
  if (v.live) {
    lines.push(
      `live:       ${v.live.free}/${v.live.slots} slots free, ${v.live.accepting ? 'accepting work' : 'not accepting work'}, version ${v.live.version}, drivers ${v.live.drivers.join(', ')} (at ${dateTime(v.live.at)})`,
    );
    for (const t of v.live.running) lines.push(`  running ${t}`);
  } else lines.push('live:       no session held');
  if (v.session)
    lines.push(
      `session:    generation ${v.session.generation}, ${v.session.state}, last heartbeat ${dateTime(v.session.lastHeartbeatAt)}`,
    );
  if (r.lostTasks.length > 0) {
    lines.push(`lost tasks (${r.lostTasks.length}):`);
    for (const t of r.lostTasks) lines.push(`  ${t.runWorkflowId} ${t.task} (attempt ${t.attempt})`);
  }
  if (schedules !== null) {
    lines.push(`schedules (${schedules.length}):`);
    for (const s of schedules)
      lines.push(
        `  ${s.id}  ${s.cron}${s.paused ? '  paused' : ''}${s.next[0] ? `  next ${dateTime(s.next[0])}` : ''}`,
      );
  }
  lines.push('history:');
  for (const h of r.history)
    lines.push(`  ${dateTime(h.at)}  ${h.status.padEnd(10)}  ${h.reason ?? ''}${h.by ? ` (${h.by})` : ''}`);
  return lines.join('\n');
}
