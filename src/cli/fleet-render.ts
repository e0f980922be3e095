/** Text for people: a plan, a refresh's result, a fleet's status (the CLI prints these). */
import { formatDuration } from '../duration';
import type { Plan, PlanItem } from '../fleet/plan';
import type { FleetStatus, RefreshResult } from '../../workflows/fleet';

const SIGN: Record<PlanItem['action'], string> = {
  create: '+',
  launch: '+',
  update: '~',
  rotate: '~',
  delete: '-',
  terminate: '-',
  close: '-',
  nothing: '=',
};

export function planText(plan: Plan): string {
  const lines = plan.items.map((i) => {
    const head = `${SIGN[i.action]} ${i.action.padEnd(9)} ${i.kind} ${i.name}${i.kind === 'pool' && i.action === 'launch' ? ` (${i.count})` : ''}: ${i.reason}`;
    const changes = 'changes' in i ? i.changes.map((c) => `      ${c.field}: ${c.from} -> ${c.to}`) : [];
    return [head, ...changes].join('\n');
  });
  const tail =
    plan.changes === 0
      ? `fleet "${plan.fleet}": no changes; EC2 matches the desired state`
      : `fleet "${plan.fleet}": ${plan.changes} change${plan.changes === 1 ? '' : 's'}`;
  return [...lines, tail].join('\n');
}

export function refreshText(r: RefreshResult): string {
  const ms = Date.parse(r.finishedAt) - Date.parse(r.startedAt);
  const parts = [
    r.templatesCreated && `${r.templatesCreated} launch template(s) created`,
    r.templatesUpdated && `${r.templatesUpdated} updated`,
    r.launched && `${r.launched} instance(s) launched`,
    r.markedTerminated && `${r.markedTerminated} expired`,
    r.confirmedTerminated && `${r.confirmedTerminated} terminated`,
    r.orphansTerminated && `${r.orphansTerminated} untracked terminated`,
    r.closed && `${r.closed} record(s) closed`,
    r.tokenRotated && 'token rotated',
  ].filter(Boolean);
  const did = parts.length > 0 ? parts.join(', ') : 'no changes';
  return `${did} in ${formatDuration(ms)} (EC2 calls: ${r.ec2Calls.read} read, ${r.ec2Calls.mutating} mutating)${r.error ? `\nerror: ${r.error}` : ''}`;
}

export function statusText(s: FleetStatus): string {
  if (!s.applied) return `fleet "${s.name}": no desired state applied yet`;
  const lines = [`fleet "${s.name}": ${s.records.length} instance(s), ${s.refreshes} refresh(es)`];
  for (const p of s.pools) {
    const counts =
      Object.entries(p.counts)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none';
    lines.push(`  pool ${p.resourceClass} (${p.taskQueue}, minIdle ${p.minIdle}, max ${p.maxInstances}): ${counts}`);
  }
  for (const r of s.records) {
    lines.push(
      `  ${r.instanceId}  ${r.resourceClass.padEnd(10)} ${r.state.padEnd(10)} until ${r.threshold}${r.runner ? `  runner ${r.runner}` : ''}`,
    );
  }
  const newest = [...s.tokens].sort((a, b) => Date.parse(b.mintedAt) - Date.parse(a.mintedAt))[0];
  lines.push(`  tokens: ${s.tokens.length} valid${newest ? `, newest ${newest.id} expires ${newest.expiresAt}` : ''}`);
  if (s.lastRefresh)
    lines.push(`  last refresh ${s.lastRefresh.finishedAt}: ${refreshText({ ...s.lastRefresh, plan: null })}`);
  return lines.join('\n');
}
