/**
 * Validation of a fleet spec: every problem is one line naming the field, with resource classes
 * named by their name (`resourceClasses.large.minIdle`). Sandbox-safe.
 */
import { DEFAULT_SETTINGS, applySettings } from '../registry/state';
import type { z } from 'zod';
import { RunfleetError } from '../errors';
import { formatProblems, type SpecProblem } from '../spec/validate';
import { parseDuration } from '../duration';
import { FLEET_LIMITS, FleetSpecSchema, type FleetSpec } from './schema';

export type FleetCheck = { ok: true; spec: FleetSpec } | { ok: false; problems: SpecProblem[] };

export function checkFleetSpec(input: unknown): FleetCheck {
  const parsed = FleetSpecSchema.safeParse(input);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((issue) => ({ path: issuePath(issue, input), message: issueMessage(issue) }));
  for (const p of crossFieldProblems(input)) {
    if (!problems.some((q) => q.path === p.path)) problems.push(p);
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, spec: parsed.data };
}

/**
 * Rules across fields, checked on the raw input (with the schema's defaults) so that they are
 * reported together with every other problem. A field that is itself invalid is skipped here:
 * the schema names it already.
 */
function crossFieldProblems(input: unknown): SpecProblem[] {
  if (!isObject(input)) return [];
  const problems: SpecProblem[] = [];
  const classes: unknown[] = Array.isArray(input['resourceClasses']) ? input['resourceClasses'] : [];
  const seen = new Set<string>();
  let total = 0;
  classes.forEach((c, i) => {
    if (!isObject(c)) return;
    const label = typeof c['name'] === 'string' && c['name'].length > 0 ? c['name'] : `[${i}]`;
    if (typeof c['name'] === 'string') {
      if (seen.has(c['name']))
        problems.push({ path: `resourceClasses.${label}.name`, message: `duplicate resource class "${c['name']}"` });
      seen.add(c['name']);
    }
    const min = c['minIdle'] ?? 0;
    const max = c['maxInstances'];
    if (typeof max === 'number') total += max;
    if (typeof min === 'number' && typeof max === 'number' && min >= 0 && max >= 1 && min > max) {
      problems.push({ path: `resourceClasses.${label}.minIdle`, message: `must not exceed maxInstances (${max})` });
    }
  });
  if (total > FLEET_LIMITS.maxInstancesTotal) {
    problems.push({
      path: 'resourceClasses',
      message: `maxInstances add up to ${total}; a fleet holds at most ${FLEET_LIMITS.maxInstancesTotal}`,
    });
  }
  const token = isObject(input['token']) ? input['token'] : {};
  const lifetime = durationMs(token['lifetime'], 3_600_000);
  const rotation = durationMs(token['rotation'], 30 * 60_000);
  if (lifetime !== null && rotation !== null && rotation >= lifetime) {
    problems.push({
      path: 'token.rotation',
      message: 'must be shorter than token.lifetime, or no token is valid between rotations',
    });
  }
  const maxLifetime = durationMs(input['maxLifetime'], 6 * 3_600_000);
  const maxIdle = durationMs(input['maxIdleTime'], 30 * 60_000);
  if (maxLifetime !== null && maxIdle !== null && maxIdle > maxLifetime)
    problems.push({ path: 'maxIdleTime', message: 'must not exceed maxLifetime' });
  if (isObject(input['runnerSettings'])) {
    const s = applySettings(DEFAULT_SETTINGS, input['runnerSettings']);
    if (!s.ok && /third of watchdogMs/.test(s.problem))
      problems.push({ path: 'runnerSettings.heartbeatMs', message: 'must be at most a third of watchdogMs' });
  }
  return problems;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A duration field's milliseconds (its default when absent), or null when it is invalid. */
function durationMs(value: unknown, fallback: number): number | null {
  if (value === undefined) return fallback;
  if (typeof value === 'number') return value > 0 ? value * 1000 : null;
  return typeof value === 'string' ? parseDuration(value) : null;
}

/** Validates a fleet spec; throws `InvalidConfig` listing every problem. */
export function validateFleetSpec(input: unknown): FleetSpec {
  const result = checkFleetSpec(input);
  if (!result.ok)
    throw new RunfleetError('InvalidConfig', formatProblems('invalid fleet spec', result.problems), {
      problems: result.problems,
    });
  return result.spec;
}

type Issue = z.core.$ZodIssue;

function issuePath(issue: Issue, input: unknown): string {
  const parts: string[] = [];
  let node: unknown = input;
  issue.path.forEach((key, i) => {
    if (issue.path[i - 1] === 'resourceClasses' && typeof key === 'number') {
      const c = (node as unknown[] | undefined)?.[key] as { name?: unknown } | undefined;
      parts.push(typeof c?.name === 'string' && c.name.length > 0 ? c.name : `[${key}]`);
    } else {
      parts.push(typeof key === 'number' ? `[${key}]` : String(key));
    }
    node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
  });
  return parts.join('.').replace(/\.\[/g, '[') || '(fleet)';
}

function issueMessage(issue: Issue): string {
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.code === 'unrecognized_keys')
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return 'is required';
  if (issue.code === 'invalid_union') {
    // Durations are a string or a number; say that rather than both branches' complaints.
    return 'must be a duration like "90s", "10m" or "1h", or a number of seconds';
  }
  return issue.message;
}
