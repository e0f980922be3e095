/**
 * The suite's operator key file: global setup makes it before any test file runs (so forks never
 * race to create it); every control worker the tests start trusts it, and runfleet processes the
 * tests start sign with it (`RUNFLEET_OPERATOR_KEY_FILE`). No vitest import: global setup loads it.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  createOperatorKeyFile,
  readOperatorKeyFile,
  signStatement,
  type OperatorKey,
} from '../../src/security/operator';
import { approvalStatement } from '../../src/security/statements';

export const TEST_OPERATOR_KEY_FILE = join(__dirname, '..', '..', '.runfleet', 'test', 'operator.key');

let operator: OperatorKey | undefined;

/** The suite's operator key (made here if global setup did not run, e.g. a unit test alone). */
export function testOperator(): OperatorKey {
  if (operator) return operator;
  operator = readOperatorKeyFile(TEST_OPERATOR_KEY_FILE) ?? createOperatorKeyFile(TEST_OPERATOR_KEY_FILE);
  return operator;
}

/** The `operator` member of an `approveTask` update: the suite's operator key signing the approval. */
export function signedApproval(
  run: string,
  task: string,
  by: string,
): { at: string; nonce: string; signature: string } {
  const at = new Date().toISOString();
  const nonce = randomBytes(16).toString('hex');
  return { at, nonce, signature: signStatement(testOperator().seed, approvalStatement(run, task, by, { at, nonce })) };
}
