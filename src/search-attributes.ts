/**
 * Runfleet's custom search attributes: one home for their names and types. Runs set them
 * (workflows/run.ts, runs a runner schedule starts), clients filter on them (`run list`), and
 * every server Runfleet starts or is pointed at registers them (`SEARCH_ATTRIBUTES`). Sandbox-safe.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/** The search attribute keys of a run. */
export const RUN_SA = {
  group: defineSearchAttributeKey('RunfleetGroup', SearchAttributeType.KEYWORD),
  /** Every prefix of the group path (`/`, `/a`, `/a/b`): prefix queries. */
  groupPath: defineSearchAttributeKey('RunfleetGroupPath', SearchAttributeType.KEYWORD_LIST),
  runName: defineSearchAttributeKey('RunfleetRunName', SearchAttributeType.KEYWORD),
  phase: defineSearchAttributeKey('RunfleetPhase', SearchAttributeType.KEYWORD),
  result: defineSearchAttributeKey('RunfleetResult', SearchAttributeType.KEYWORD),
} as const;

/** The type names `temporal operator search-attribute create` and the dev server take. */
const TYPE_NAMES = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList' } as const;
export type SearchAttributeTypeName = (typeof TYPE_NAMES)[keyof typeof TYPE_NAMES];

/** Every custom search attribute the server must have, by name, with its type name. */
export const SEARCH_ATTRIBUTES: Readonly<Record<string, SearchAttributeTypeName>> = Object.fromEntries(
  Object.values(RUN_SA).map((k) => [k.name, TYPE_NAMES[k.type as keyof typeof TYPE_NAMES]]),
);
