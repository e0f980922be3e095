/**
 * The suite's Temporal dev server, started once by `global-setup.ts`, and names that keep test
 * files (which run in parallel across forks) from sharing task queues or workflow ids.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

/** `host:port` of the dev server the integration run shares. */
export function temporalAddress(): string {
  return inject('temporalAddress');
}

/** `<prefix>-<pid>-<random>`: unique across forks and across runs against one server. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
