/**
 * Desired versus actual: what a refresh would change, item by item, computed from a snapshot of
 * EC2 (launch templates, instances by tag) and the fleet's records. Pure; `fleet plan` prints
 * it, the fleet workflow executes it. Sandbox-safe.
 */
import { expiredRecords, expiryReason, tokenDue } from './records';
import { CLASS_TAG, FLEET_TAG, MANAGED_TAG, type FleetSpec, type ResourceClass } from './schema';
import { LIVE_STATES, type FleetState, type InstanceRecord } from './types';

/** The launch template fields Runfleet manages, normalized so that equal means no drift. */
export interface TemplateData {
  imageId: string;
  instanceType: string;
  instanceProfile: string | null;
  /** Plain text (not base64), with the {{token}} placeholder: tokens are set at launch. */
  userData: string;
  securityGroupIds: string[];
  /** Tags given to instances launched from the template. */
  instanceTags: Record<string, string>;
}

export interface ObservedTemplate {
  name: string;
  id: string;
  defaultVersion: number;
  latestVersion: number;
  defaultData: TemplateData;
  latestData: TemplateData;
}

/** EC2 instance states, as DescribeInstances names them. */
export type Ec2State = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

export interface ObservedInstance {
  instanceId: string;
  state: Ec2State;
  resourceClass: string | null;
  launchTime: string;
}

export interface Observed {
  /** Launch templates named `runfleet-<fleet>-*`. */
  templates: ObservedTemplate[];
  /** Instances tagged `runfleet:fleet=<fleet>`, in any state. */
  instances: ObservedInstance[];
  observedAt: string;
}

export const PLAN_ACTIONS = [
  'create',
  'update',
  'delete',
  'launch',
  'terminate',
  'close',
  'rotate',
  'nothing',
] as const;
export type PlanAction = (typeof PLAN_ACTIONS)[number];

export interface FieldChange {
  field: string;
  from: string;
  to: string;
}

export type PlanItem =
  | {
      kind: 'launch-template';
      name: string;
      resourceClass: string | null;
      action: 'create' | 'update' | 'delete' | 'nothing';
      reason: string;
      changes: FieldChange[];
      templateId: string | null;
      makeDefault: number | null;
    }
  | {
      kind: 'pool';
      name: string;
      resourceClass: string;
      action: 'create' | 'launch' | 'nothing';
      reason: string;
      count: number;
    }
  | {
      kind: 'instance';
      name: string;
      resourceClass: string | null;
      action: 'terminate' | 'close';
      reason: string;
      phase: 'mark' | 'confirm' | 'orphan' | 'gone';
      version: number | null;
    }
  | { kind: 'token'; name: string; action: 'rotate' | 'nothing'; reason: string }
  | { kind: 'parameters'; name: string; action: 'update' | 'nothing'; reason: string; changes: FieldChange[] };

export interface Plan {
  fleet: string;
  items: PlanItem[];
  /** Items that change something. */
  changes: number;
  /** Instances by EC2 state and records by state, for the summary line. */
  counts: { instances: number; records: Record<string, number> };
}

export function templateName(fleet: string, resourceClass: string): string {
  return `runfleet-${fleet}-${resourceClass}`;
}

export function poolName(fleet: string, resourceClass: string): string {
  return `${fleet}-${resourceClass}`;
}

export function desiredTemplate(spec: FleetSpec, c: ResourceClass): TemplateData {
  return {
    imageId: spec.launchTemplate.ami,
    instanceType: c.instanceType,
    instanceProfile: spec.launchTemplate.instanceProfile ?? null,
    userData: spec.launchTemplate.userData,
    securityGroupIds: [...spec.launchTemplate.securityGroups].sort(),
    instanceTags: instanceTags(spec, c.name),
  };
}

export function instanceTags(spec: FleetSpec, resourceClass: string): Record<string, string> {
  return { ...spec.tags, [FLEET_TAG]: spec.name, [CLASS_TAG]: resourceClass, [MANAGED_TAG]: 'runfleet' };
}

export function diffTemplate(actual: TemplateData, desired: TemplateData): FieldChange[] {
  const changes: FieldChange[] = [];
  const cmp = (field: string, a: unknown, d: unknown) => {
    const from = JSON.stringify(a);
    const to = JSON.stringify(d);
    if (from !== to) changes.push({ field, from: short(from), to: short(to) });
  };
  cmp('imageId', actual.imageId, desired.imageId);
  cmp('instanceType', actual.instanceType, desired.instanceType);
  cmp('instanceProfile', actual.instanceProfile, desired.instanceProfile);
  cmp('userData', actual.userData, desired.userData);
  cmp('securityGroupIds', [...actual.securityGroupIds].sort(), desired.securityGroupIds);
  cmp('instanceTags', sortKeys(actual.instanceTags), sortKeys(desired.instanceTags));
  return changes;
}

function sortKeys(r: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function short(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** EC2 reports the instance going or gone: phase 2 is done. */
export function isTerminating(state: Ec2State): boolean {
  return state === 'shutting-down' || state === 'terminated';
}

/** The operational parameters a refresh applies to the fleet state (no EC2 call). */
function parameters(spec: FleetSpec): Record<string, unknown> {
  return {
    maxLifetime: spec.maxLifetime,
    maxIdleTime: spec.maxIdleTime,
    subnets: spec.subnets,
    registrationTimeout: spec.registrationTimeout,
    orphanGrace: spec.orphanGrace,
    refreshInterval: spec.refreshInterval,
    token: spec.token,
    tags: spec.tags,
  };
}

export function planFleet(spec: FleetSpec, observed: Observed, state: FleetState, now: string): Plan {
  const items: PlanItem[] = [];
  const nowMs = Date.parse(now);

  // Launch templates: one per class; a changed field makes one new version, made default.
  const byName = new Map(observed.templates.map((t) => [t.name, t] as const));
  for (const c of spec.resourceClasses) {
    const name = templateName(spec.name, c.name);
    const desired = desiredTemplate(spec, c);
    const actual = byName.get(name);
    byName.delete(name);
    if (!actual) {
      items.push({
        kind: 'launch-template',
        name,
        resourceClass: c.name,
        action: 'create',
        reason: 'no such launch template',
        changes: [],
        templateId: null,
        makeDefault: null,
      });
      continue;
    }
    const changes = diffTemplate(actual.defaultData, desired);
    if (changes.length === 0) {
      items.push({
        kind: 'launch-template',
        name,
        resourceClass: c.name,
        action: 'nothing',
        reason: `default version ${actual.defaultVersion} matches`,
        changes,
        templateId: actual.id,
        makeDefault: null,
      });
    } else if (
      actual.latestVersion !== actual.defaultVersion &&
      diffTemplate(actual.latestData, desired).length === 0
    ) {
      // A previous refresh made the version and stopped before making it default: reuse it.
      items.push({
        kind: 'launch-template',
        name,
        resourceClass: c.name,
        action: 'update',
        reason: `make version ${actual.latestVersion} (already matching) the default`,
        changes,
        templateId: actual.id,
        makeDefault: actual.latestVersion,
      });
    } else {
      items.push({
        kind: 'launch-template',
        name,
        resourceClass: c.name,
        action: 'update',
        reason: `new version ${actual.latestVersion + 1}, made default`,
        changes,
        templateId: actual.id,
        makeDefault: null,
      });
    }
  }
  for (const t of byName.values()) {
    const cls = t.name.slice(`runfleet-${spec.name}-`.length);
    const live = Object.values(state.records).some((r) => r.resourceClass === cls);
    items.push(
      live
        ? {
            kind: 'launch-template',
            name: t.name,
            resourceClass: cls,
            action: 'nothing',
            reason: 'class removed; kept until its instances are gone',
            changes: [],
            templateId: t.id,
            makeDefault: null,
          }
        : {
            kind: 'launch-template',
            name: t.name,
            resourceClass: cls,
            action: 'delete',
            reason: 'class removed',
            changes: [],
            templateId: t.id,
            makeDefault: null,
          },
    );
  }

  // Instances: phase 2 still to confirm, expired records, orphans, records whose instance is gone.
  const seen = new Map(observed.instances.map((i) => [i.instanceId, i] as const));
  const records = Object.values(state.records);
  const expired = new Map(expiredRecords(state, now).map((e) => [e.instanceId, e.version] as const));
  const leaving = new Set<string>();
  for (const r of records) {
    const inst = seen.get(r.instanceId);
    const young = nowMs - Date.parse(r.launchedAt) < spec.orphanGrace;
    if (r.state === 'terminated') {
      leaving.add(r.instanceId);
      items.push({
        kind: 'instance',
        name: r.instanceId,
        resourceClass: r.resourceClass,
        action: 'terminate',
        phase: 'confirm',
        version: r.version,
        reason: `marked terminated (${r.reason ?? 'expired'}); EC2 to confirm, then artifacts deleted`,
      });
    } else if ((!inst && !young) || (inst && isTerminating(inst.state))) {
      leaving.add(r.instanceId);
      items.push({
        kind: 'instance',
        name: r.instanceId,
        resourceClass: r.resourceClass,
        action: 'close',
        phase: 'gone',
        version: r.version,
        reason: inst ? `EC2 reports it ${inst.state}` : 'EC2 does not know it',
      });
    } else if (expired.has(r.instanceId)) {
      leaving.add(r.instanceId);
      items.push({
        kind: 'instance',
        name: r.instanceId,
        resourceClass: r.resourceClass,
        action: 'terminate',
        phase: 'mark',
        version: r.version,
        reason: `${r.state} past its threshold ${r.threshold}: ${expiryReason(spec, r)}`,
      });
    }
  }
  for (const i of observed.instances) {
    if (state.records[i.instanceId] || isTerminating(i.state)) continue;
    if (nowMs - Date.parse(i.launchTime) < spec.orphanGrace) continue;
    items.push({
      kind: 'instance',
      name: i.instanceId,
      resourceClass: i.resourceClass,
      action: 'terminate',
      phase: 'orphan',
      version: null,
      reason: `tagged for fleet "${spec.name}" but has no record`,
    });
  }

  // Pools: one per class; keep minIdle warm (launching or idle), never above maxInstances.
  for (const c of spec.resourceClasses) {
    const name = poolName(spec.name, c.name);
    const mine = records.filter(
      (r) => r.resourceClass === c.name && !leaving.has(r.instanceId) && LIVE_STATES.includes(r.state),
    );
    const warm = mine.filter((r) => (r.state === 'idle' || r.state === 'created') && r.claimedBy === null).length;
    const room = c.maxInstances - mine.length;
    const count = Math.max(0, Math.min(c.minIdle - warm, room));
    const summary = summarize(mine);
    if (!state.pools[c.name])
      items.push({
        kind: 'pool',
        name,
        resourceClass: c.name,
        action: 'create',
        reason: 'new resource class',
        count: 0,
      });
    if (count > 0)
      items.push({
        kind: 'pool',
        name,
        resourceClass: c.name,
        action: 'launch',
        reason: `${warm} warm of minIdle ${c.minIdle} (${summary})`,
        count,
      });
    else if (state.pools[c.name])
      items.push({
        kind: 'pool',
        name,
        resourceClass: c.name,
        action: 'nothing',
        reason: summary || 'no instances',
        count: 0,
      });
  }

  items.push(
    tokenDue(state, spec, now)
      ? {
          kind: 'token',
          name: 'registration token',
          action: 'rotate',
          reason: state.tokens.length === 0 ? 'no token yet' : 'rotation period passed',
        }
      : { kind: 'token', name: 'registration token', action: 'nothing', reason: 'current token is fresh' },
  );

  const before = state.spec ? parameters(state.spec) : {};
  const after = parameters(spec);
  const paramChanges: FieldChange[] = Object.keys(after)
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => ({ field: k, from: short(JSON.stringify(before[k]) ?? 'unset'), to: short(JSON.stringify(after[k])) }));
  items.push(
    paramChanges.length > 0
      ? {
          kind: 'parameters',
          name: 'operational parameters',
          action: 'update',
          reason: `${paramChanges.length} changed`,
          changes: paramChanges,
        }
      : { kind: 'parameters', name: 'operational parameters', action: 'nothing', reason: 'unchanged', changes: [] },
  );

  const recordCounts: Record<string, number> = {};
  for (const r of records) recordCounts[r.state] = (recordCounts[r.state] ?? 0) + 1;
  return {
    fleet: spec.name,
    items,
    changes: items.filter((i) => i.action !== 'nothing').length,
    counts: { instances: observed.instances.length, records: recordCounts },
  };
}

function summarize(records: InstanceRecord[]): string {
  const counts: Record<string, number> = {};
  for (const r of records) counts[r.state] = (counts[r.state] ?? 0) + 1;
  return Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ');
}
