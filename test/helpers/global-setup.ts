/**
 * Starts ONE headless, in-memory Temporal dev server for the whole integration run and hands its
 * address to the test files with `provide`. If the server cannot start, setup throws: integration
 * tests must fail, never skip, when their infrastructure is missing.
 *
 * `RUNFLEET_TEST_TEMPORAL_ADDRESS=host:port` (and `RUNFLEET_TEST_TEMPORAL_HTTP_ADDRESS`, its HTTP
 * API, for the tests of the CLI's HTTP reads) runs the suite against a Temporal service that is
 * already there instead (namespace `default`): setup connects, registers Runfleet's search
 * attributes where missing, and fails naming the address when it cannot.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes, startDevServer, type DevServer } from '../../src/server/dev-server';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import { testOperator } from './operator-key';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    /** Its HTTP API; '' for an external service without `RUNFLEET_TEST_TEMPORAL_HTTP_ADDRESS`. */
    temporalHttpAddress: string;
  }
}

const projectRoot = path.resolve(__dirname, '..', '..');

let server: DevServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  // The suite's operator key, made once here so that test files running in parallel never race to.
  testOperator();
  const external = process.env['RUNFLEET_TEST_TEMPORAL_ADDRESS'];
  if (external !== undefined && external !== '') {
    project.provide('temporalAddress', await useExternal(external));
    project.provide('temporalHttpAddress', process.env['RUNFLEET_TEST_TEMPORAL_HTTP_ADDRESS'] ?? '');
    return;
  }
  // Server output goes to a file: the terminal belongs to vitest, and the tail of the output is
  // part of the error when the server fails to start.
  const logFile = path.join(projectRoot, '.runfleet', 'test', 'temporal-dev-server.log');
  rmSync(logFile, { force: true }); // one run's output, not every run's
  const binary = await ensureTemporalBinary({ projectRoot, log: (line) => process.stderr.write(`${line}\n`) });
  server = await startDevServer({ binary, headless: true, logFile });
  project.provide('temporalAddress', server.address);
  project.provide('temporalHttpAddress', server.httpAddress);
}

/** Checks the external service answers and has Runfleet's search attributes; its address. */
async function useExternal(address: string): Promise<string> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: 10_000 });
  } catch (err) {
    throw new Error(
      `RUNFLEET_TEST_TEMPORAL_ADDRESS=${address}: no Temporal answers there (${(err as Error).message})`,
      {
        cause: err,
      },
    );
  }
  try {
    await ensureSearchAttributes(connection, 'default', (line) => process.stderr.write(`${line}\n`));
  } finally {
    await connection.close();
  }
  process.stderr.write(`integration tests against the Temporal service at ${address}\n`);
  return address;
}

export async function teardown(): Promise<void> {
  await server?.stop();
  server = undefined;
}
