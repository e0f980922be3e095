/**
 * Which runners may take a task that asks for labels (`runs_on`): pure, over the runners'
 * registry records. A runner matches when it is of the task's pool, offers its driver, takes work
 * now (ready and enabled) and has every label with the same value. The labels compared are the
 * ones the operator signed into the runner's grant when the caller has verified it (a runner host
 * cannot give itself a label), else the record's.
 */
import type { DriverName } from '../types';

export interface MatchCandidate {
  name: string;
  pool: string;
  labels: Record<string, string>;
  drivers: readonly DriverName[];
  status: string;
  enabled: boolean;
}

export interface MatchRequest {
  pool: string;
  driver: DriverName;
  labels: Record<string, string>;
}

export interface MatchResult {
  runners: string[];
  why: string | null;
}

/** Runners of the pool named in a "none match" answer at most. */
const MAX_NAMED = 5;

export function hasLabels(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => Object.prototype.hasOwnProperty.call(have, k) && have[k] === v);
}

export function matchRunners(candidates: readonly MatchCandidate[], req: MatchRequest): MatchResult {
  const pool = candidates.filter((c) => c.pool === req.pool).sort((a, b) => (a.name < b.name ? -1 : 1));
  const runners = pool
    .filter(
      (c) => c.drivers.includes(req.driver) && c.status === 'ready' && c.enabled && hasLabels(c.labels, req.labels),
    )
    .map((c) => c.name);
  if (runners.length > 0) return { runners, why: null };
  if (pool.length === 0) return { runners, why: `pool "${req.pool}" has no registered runner` };
  const named = pool.slice(0, MAX_NAMED).map((c) => {
    const labels = Object.entries(c.labels)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const state = !c.drivers.includes(req.driver)
      ? `no ${req.driver} driver`
      : c.status !== 'ready' || !c.enabled
        ? c.enabled
          ? c.status
          : 'disabled'
        : 'other labels';
    return `${c.name} {${labels}} ${state}`;
  });
  const more = pool.length > MAX_NAMED ? `, and ${pool.length - MAX_NAMED} more` : '';
  return {
    runners,
    why: `pool "${req.pool}" has ${pool.length} runner${pool.length === 1 ? '' : 's'}: ${named.join('; ')}${more}`,
  };
}
