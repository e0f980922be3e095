/**
 * `run list` and `run list --count` over Temporal's HTTP API: the same answers as
 * `RunfleetClient`'s `listRunsPage` and `countRuns`, without loading the gRPC client (bench/cli.ts:
 * a fraction of the start-up). Visibility records hold no secret: search attributes are plain
 * JSON, and a run's name is read from its memo only when that is plain JSON too.
 *
 * `run show` cannot come this way: the HTTP API routes a workflow id in the URL path, and it
 * splits a run's id (`run/<group>/<id>`) at its slashes, escaped or not ("Not Found").
 */
import { z } from 'zod';
import { RunfleetError } from '../errors';
import { printable, type TemporalHttpApi } from './http-api';
import {
  listPage,
  pageTokenText,
  runSummary,
  runsQuery,
  type ListRunsFilter,
  type RunPage,
  type VisibilityRecord,
} from './run-list';

/** A payload as the HTTP API writes it: metadata values and data in base64. */
const JsonPayload = z.object({ data: z.string().optional() });

const JsonExecutionInfo = z.object({
  execution: z.object({ workflowId: z.string().optional() }).optional(),
  status: z.string().optional(),
  startTime: z.string().optional(),
  closeTime: z.string().optional(),
  searchAttributes: z.object({ indexedFields: z.record(z.string(), JsonPayload).optional() }).optional(),
  memo: z.object({ fields: z.record(z.string(), JsonPayload).optional() }).optional(),
});
type JsonExecutionInfo = z.infer<typeof JsonExecutionInfo>;

/** ListWorkflowExecutionsResponse, the parts read. */
const ListAnswer = z.object({
  executions: z.array(JsonExecutionInfo).optional(),
  nextPageToken: z.string().optional(),
});
/** CountWorkflowExecutionsResponse: an int64, which the JSON mapping writes as a string. */
const CountAnswer = z.object({ count: z.union([z.string().regex(/^\d+$/), z.number().int().min(0)]).optional() });

/** An answer in the shape `schema` expects, or an error naming what is off (the network is untrusted). */
function answer<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const at = issue?.path.length ? issue.path.map(String).join('.') : '(the answer)';
  throw new RunfleetError(
    'ComponentUnavailable',
    printable(`Temporal's HTTP API answered ${what} in another shape: ${at}: ${issue?.message}`),
  );
}

export class HttpRunReader {
  constructor(private readonly api: TemporalHttpApi) {}

  async listRunsPage(filter: ListRunsFilter = {}): Promise<RunPage> {
    const query = runsQuery(filter);
    const { limit, pageToken } = listPage(filter);
    const page = answer(
      ListAnswer,
      await this.api.get('workflows', {
        query,
        pageSize: limit,
        nextPageToken: pageToken ? Buffer.from(pageToken).toString('base64') : undefined,
      }),
      'a list',
    );
    return {
      runs: (page.executions ?? []).map((info) => runSummary(visibilityRecord(info))),
      nextPageToken: pageTokenText(page.nextPageToken ? Buffer.from(page.nextPageToken, 'base64') : null),
    };
  }

  async countRuns(filter: Omit<ListRunsFilter, 'limit' | 'pageToken'> = {}): Promise<number> {
    const counted = answer(CountAnswer, await this.api.get('workflow-count', { query: runsQuery(filter) }), 'a count');
    return Number(counted.count ?? 0);
  }
}

/** A visibility record of the HTTP API in the shape `runSummary` reads. */
function visibilityRecord(info: JsonExecutionInfo): VisibilityRecord {
  const searchAttributes: Record<string, Uint8Array | undefined> = {};
  for (const [k, v] of Object.entries(info.searchAttributes?.indexedFields ?? {})) {
    searchAttributes[k] = v.data === undefined ? undefined : Buffer.from(v.data, 'base64');
  }
  const name = info.memo?.fields?.['name']?.data;
  return {
    workflowId: info.execution?.workflowId ?? '',
    status: info.status ?? 'UNSPECIFIED',
    startTime: isoOrNull(info.startTime),
    closeTime: isoOrNull(info.closeTime),
    searchAttributes,
    memoName: name === undefined ? undefined : Buffer.from(name, 'base64'),
  };
}

/** RFC 3339 with nanoseconds (the API's) as the client's ISO form with milliseconds. */
function isoOrNull(time: string | undefined): string | null {
  if (!time) return null;
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}
