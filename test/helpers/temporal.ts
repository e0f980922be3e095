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

/** `host:port` of that server's HTTP API; fails, saying why, when an external service has none. */
export function temporalHttpAddress(): string {
  const address = inject('temporalHttpAddress');
  if (!address)
    throw new Error(
      'RUNFLEET_TEST_TEMPORAL_HTTP_ADDRESS is unset: the external Temporal service has no HTTP API to test',
    );
  return address;
}

/** `<prefix>-<pid>-<random>`: unique across forks and across runs against one server. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`;
}
