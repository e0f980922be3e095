/**
 * The suite's operator key file: global setup makes it before any test file runs (so forks never
 * race to create it); every control worker the tests start trusts it, and runfleet processes the
 * tests start sign with it (`RUNFLEET_OPERATOR_KEY_FILE`). No vitest import: global setup loads it.
 */
import { join } from 'node:path';
import { createOperatorKeyFile, readOperatorKeyFile, type OperatorKey } from '../../src/security/operator';

export const TEST_OPERATOR_KEY_FILE = join(__dirname, '..', '..', '.runfleet', 'test', 'operator.key');

let operator: OperatorKey | undefined;

/** The suite's operator key (made here if global setup did not run, e.g. a unit test alone). */
export function testOperator(): OperatorKey {
  if (operator) return operator;
  operator = readOperatorKeyFile(TEST_OPERATOR_KEY_FILE) ?? createOperatorKeyFile(TEST_OPERATOR_KEY_FILE);
  return operator;
}
