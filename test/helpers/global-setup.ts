/**
 * Starts ONE headless, in-memory Temporal dev server for the whole integration run and hands its
 * address to the test files with `provide`. If the server cannot start, setup throws: integration
 * tests must fail, never skip, when their infrastructure is missing.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../../src/server/dev-server';
import { ensureTemporalBinary } from '../../src/server/temporal-binary';
import { testOperator } from './operator-key';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
  }
}

const projectRoot = path.resolve(__dirname, '..', '..');

let server: DevServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Server output goes to a file: the terminal belongs to vitest, and the tail of the output is
  // part of the error when the server fails to start.
  const logFile = path.join(projectRoot, '.runfleet', 'test', 'temporal-dev-server.log');
  rmSync(logFile, { force: true }); // one run's output, not every run's
  const binary = await ensureTemporalBinary({ projectRoot, log: (line) => process.stderr.write(`${line}\n`) });
  server = await startDevServer({ binary, headless: true, logFile });
  // The suite's operator key, made once here so that test files running in parallel never race to.
  testOperator();
  project.provide('temporalAddress', server.address);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  server = undefined;
}
