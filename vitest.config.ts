import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * The integration files the cluster tier runs again against Temporal as a service (four processes
 * on PostgreSQL) instead of the dev server: the run engine, at-most-once, lost tasks, groups, the
 * registry, the fleet, runners and a control worker on hosts of their own, cut off, and the CLI
 * (its run list through the service's HTTP API among them).
 */
const CLUSTER_TIER = [
  'dag',
  'at-most-once',
  'lost-and-found',
  'changegroup',
  'runner-registry',
  'fleet-run',
  'partition',
  'cli',
].map((name) => `test/integration/${name}.test.ts`);

export default defineConfig({
  test: {
    // The Temporal worker's native runtime crashes under worker threads: every project uses forks.
    pool: 'forks',
    // Test files run in parallel; integration files all share one dev server and each starts
    // workers, so two forks keep a 2-core machine responsive. (Vitest only takes these options at
    // the root, so they apply to the fast unit files too, which barely notice.)
    fileParallelism: true,
    maxWorkers: 2,
    minWorkers: 1,
    // Tests and every process they start run without data keys unless a test gives its own: the
    // checkout's `.runfleet/keys` (made by `scripts/quickstart`) would encrypt what tests cannot read.
    // Workers refuse to start without keys unless told payloads may travel in clear: tests say so
    // (the security tests check the refusal with this unset, and encryption with their own keys).
    env: {
      RUNFLEET_KEY_FILE: resolve(__dirname, '.runfleet', 'test', 'no-such-dir', 'runfleet.keys'),
      RUNFLEET_ALLOW_PLAINTEXT: '1',
      // Processes the tests start write text log lines (their stderr is a file, which would mean
      // JSON): the tests read them as people do. test/integration/logs.test.ts checks the JSON.
      RUNFLEET_LOG_FORMAT: 'text',
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Some unit tests spawn the CLI (node + tsx): seconds each on a busy 2-core machine.
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One headless in-memory dev server for the whole integration run.
          globalSetup: ['test/helpers/global-setup.ts'],
          // Workflows, workers and a shared server on a 2-core machine: seconds can become a minute.
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          // The files above, and the faults that only a service of separate processes can have.
          include: [...CLUSTER_TIER, 'test/cluster/**/*.test.ts'],
          globalSetup: ['test/helpers/cluster-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
