/**
 * Listing runs from Temporal visibility, the same over gRPC (`RunfleetClient`) and over the HTTP
 * API (`HttpRunReader`): the filter, its visibility query, page tokens, and a run's summary from
 * a visibility record. Nothing here loads the Temporal SDK.
 */
import { RunfleetError } from '../errors';
import { WORKFLOW_TYPES } from '../ids';
import { RUN_PHASES, RUN_RESULTS, type RunPhase, type RunResult } from '../types';

export interface ListRunsFilter {
  /** A group path; runs of this group and every group below it. Default: all. */
  group?: string;
  phase?: RunPhase;
  result?: RunResult;
  /** Runs started at or after this time (ISO 8601). */
  since?: string;
  /** Runs started before this time (ISO 8601). */
  until?: string;
  /** At most this many runs, newest first (a page). Default 50. */
  limit?: number;
  /** The token `listRunsPage` returned for the next page. */
  pageToken?: string;
}

export interface RunPage {
  runs: RunSummary[];
  /** Pass as `pageToken` for the next page; null on the last page. */
  nextPageToken: string | null;
}

export interface RunSummary {
  /** The workflow id. */
  id: string;
  name: string;
  group: string;
  phase: string;
  result: string;
  /** Temporal's execution status (`RUNNING`, `COMPLETED`, `CANCELLED`, `TERMINATED`, ...). */
  status: string;
  startTime: string;
  closeTime: string | null;
}

/** One execution as visibility gives it, whichever way it came. */
export interface VisibilityRecord {
  workflowId: string;
  /** Temporal's status name, with or without its `WORKFLOW_EXECUTION_STATUS_` prefix. */
  status: string;
  startTime: string | null;
  closeTime: string | null;
  /** The data of each search attribute's payload (JSON). */
  searchAttributes: Record<string, Uint8Array | undefined>;
  /** The data of the memo's `name` payload (JSON), when it is plain JSON. */
  memoName: Uint8Array | undefined;
}

export const DEFAULT_LIST_LIMIT = 50;
/** Visibility pages hold at most 1,000 executions. */
export const MAX_LIST_LIMIT = 1000;
const GROUP_RE = /^(\/[A-Za-z0-9_.-]+)+$/;

/** A page's size and the next page's token from a filter, checked. */
export function listPage(filter: ListRunsFilter): { limit: number; pageToken: Uint8Array | undefined } {
  const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RunfleetError('InvalidArgument', `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  let pageToken: Uint8Array | undefined;
  if (filter.pageToken !== undefined) {
    pageToken = Buffer.from(filter.pageToken, 'base64url');
    if (pageToken.length === 0) throw new RunfleetError('InvalidArgument', 'the page token is empty or not base64url');
  }
  return { limit, pageToken };
}

/** The token a person passes for the next page: null at the end. */
export function pageTokenText(token: Uint8Array | null | undefined): string | null {
  return token && token.length > 0 ? Buffer.from(token).toString('base64url') : null;
}

export function normalizeGroup(group: string): string {
  const g = '/' + group.trim().replace(/^\/+/, '').replace(/\/+$/, '');
  if (g !== '/' && !GROUP_RE.test(g)) {
    throw new RunfleetError('InvalidArgument', `group "${group}" must be a path like /project/42/main`);
  }
  return g;
}

/** The visibility query of a filter: run workflows, by group prefix, phase, result and start time. */
export function runsQuery(filter: Omit<ListRunsFilter, 'limit' | 'pageToken'>): string {
  const clauses = [`WorkflowType = ${quote(WORKFLOW_TYPES.run)}`];
  const group = filter.group === undefined ? undefined : normalizeGroup(filter.group);
  if (group !== undefined && group !== '/') clauses.push(`RunfleetGroupPath = ${quote(group)}`);
  if (filter.phase !== undefined) {
    if (!RUN_PHASES.includes(filter.phase))
      throw new RunfleetError('InvalidArgument', `phase "${filter.phase}" is not one of ${RUN_PHASES.join(', ')}`);
    clauses.push(`RunfleetPhase = ${quote(filter.phase)}`);
  }
  if (filter.result !== undefined) {
    if (!RUN_RESULTS.includes(filter.result))
      throw new RunfleetError('InvalidArgument', `result "${filter.result}" is not one of ${RUN_RESULTS.join(', ')}`);
    clauses.push(`RunfleetResult = ${quote(filter.result)}`);
  }
  if (filter.since !== undefined) clauses.push(`StartTime >= ${quote(isoTime('since', filter.since))}`);
  if (filter.until !== undefined) clauses.push(`StartTime < ${quote(isoTime('until', filter.until))}`);
  return clauses.join(' AND ');
}

function isoTime(what: string, value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new RunfleetError('InvalidArgument', `${what} "${value}" is not a time like 2026-11-22T10:00:00Z`);
  return new Date(ms).toISOString();
}

/** A run's summary from a visibility record (search attributes and memo are JSON payloads). */
export function runSummary(record: VisibilityRecord): RunSummary {
  const attrs = record.searchAttributes;
  const text = (data: Uint8Array | undefined): string | undefined => {
    if (!data) return undefined;
    try {
      const value: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
      return typeof value === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    id: record.workflowId,
    name: text(record.memoName) ?? text(attrs['RunfleetRunName']) ?? '',
    group: text(attrs['RunfleetGroup']) ?? '',
    phase: text(attrs['RunfleetPhase']) ?? 'queued',
    result: text(attrs['RunfleetResult']) ?? 'unknown',
    status: record.status.replace(/^WORKFLOW_EXECUTION_STATUS_/, ''),
    startTime: record.startTime ?? '',
    closeTime: record.closeTime,
  };
}

/** A visibility query string literal. */
function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
