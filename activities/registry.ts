/**
 * The registry's activities, served by the control worker (the only workers holding the data
 * keys and the operator public key). The runner workflow's state is not trusted here: anyone with
 * namespace access can start a `runner/<name>` workflow with any state. So the keys are sealed only
 * for an admission that verifies on its own: the operator key signed the grant for this very
 * workflow's runner, and the grant's token key signed the public key the keys are sealed for.
 */
import { Context } from '@temporalio/activity';
import type { KeyRing } from '../src/codec/keys';
import { sealKeys } from '../src/codec/seal';
import { RunfleetError } from '../src/errors';
import { asFailure } from '../src/failures';
import { runnerKeyScopes, runnerWorkflowId } from '../src/ids';
import { verifyStatementNode } from '../src/security/operator';
import {
  APPROVAL_KIND,
  CLOCK_SKEW_MS,
  grantProblem,
  proofProblem,
  type ApprovalStatement,
  type OperatorCommand,
  type TokenGrant,
} from '../src/security/statements';
import type { Admission } from '../workflows/runner-messages';
import type { RegistryActivities } from './types';

export interface RegistryActivityDeps {
  keys: KeyRing;
  /**
   * base64 of the operator's raw Ed25519 public key. Without it the worker admits nobody: it
   * seals no keys and applies no operator command.
   */
  operatorPublicKey: string | null;
  /** The clock, for tests. Default Date.now. */
  now?: () => number;
}

export function createRegistryActivities(deps: RegistryActivityDeps): RegistryActivities {
  const now = deps.now ?? Date.now;
  return {
    async sealDataKeys({ publicKey, admission }) {
      try {
        const grant = verifyAdmission(deps.operatorPublicKey, admission, publicKey, callerWorkflowId());
        // Only the keys of the runner's own scopes: what is sent to other pools and runners stays
        // unreadable to it. An empty ring seals nothing (then everything travels in clear).
        return sealKeys(deps.keys.keysFor(runnerKeyScopes(grant.runner, grant.pool)), publicKey);
      } catch (err) {
        throw asFailure(err);
      }
    },

    async verifyApproval({ approval, signature }) {
      try {
        verifyApprovalStatement(deps.operatorPublicKey, approval, signature, callerWorkflowId(), now());
      } catch (err) {
        throw asFailure(err);
      }
    },

    async verifyOperatorCommand({ command, signature }) {
      try {
        verifyCommand(deps.operatorPublicKey, command, signature, callerWorkflowId(), now());
      } catch (err) {
        throw asFailure(err);
      }
    },
  };
}

/**
 * Checks an admission on its own, trusting nothing the workflow kept: the operator key signed the
 * grant, for the runner of `workflowId` (when known); the token key of the grant signed the proof
 * over `publicKey`, while the grant was valid. Returns the verified grant (its pool decides which
 * data keys the runner gets); `Unauthorized` otherwise.
 */
export function verifyAdmission(
  operatorKey: string | null,
  admission: Admission | undefined,
  publicKey: string,
  workflowId: string | null,
): TokenGrant {
  requireOperatorKey(operatorKey, 'admits no runner');
  if (!admission)
    throw new RunfleetError(
      'Unauthorized',
      'no operator-signed admission for this runner: issue a token with `runfleet runner token NAME` and register again',
    );
  const { grant, signature, proof, proofSignature } = admission;
  const bad = grantProblem(grant) ?? proofProblem(proof);
  if (bad) throw new RunfleetError('Unauthorized', `the admission is malformed: ${bad}`);
  if (!verifyStatementNode(operatorKey, grant, signature))
    throw new RunfleetError(
      'Unauthorized',
      `runner ${grant.runner}: its token grant is not signed by the operator key; no data keys`,
    );
  if (workflowId !== null && workflowId !== runnerWorkflowId(grant.runner))
    throw new RunfleetError('Unauthorized', `the grant is for runner ${grant.runner}, not for ${workflowId}`);
  if (proof.runner !== grant.runner || proof.tokenId !== grant.tokenId || proof.publicKey !== publicKey)
    throw new RunfleetError(
      'Unauthorized',
      `runner ${grant.runner}: the registration proof is for another token or key`,
    );
  const at = Date.parse(proof.at);
  if (at < Date.parse(grant.issuedAt) - CLOCK_SKEW_MS || at > Date.parse(grant.expiresAt))
    throw new RunfleetError(
      'Unauthorized',
      `runner ${grant.runner}: registered at ${proof.at}, outside its token's life (${grant.issuedAt} to ${grant.expiresAt})`,
    );
  if (!verifyStatementNode(grant.tokenKey, proof, proofSignature))
    throw new RunfleetError(
      'Unauthorized',
      `runner ${grant.runner}: the registration proof is not signed by its token`,
    );
  return grant;
}

/** `Unauthorized` unless the operator key signed `command`, for the runner of `workflowId`, recently. */
export function verifyCommand(
  operatorKey: string | null,
  command: OperatorCommand,
  signature: string,
  workflowId: string | null,
  nowMs: number,
): void {
  requireOperatorKey(operatorKey, 'applies no operator command');
  if (!verifyStatementNode(operatorKey, command, signature))
    throw new RunfleetError(
      'Unauthorized',
      `runner ${String(command?.runner)}: ${String(command?.action)} is not signed by the operator key (or its arguments changed)`,
    );
  if (workflowId !== null && workflowId !== runnerWorkflowId(command.runner))
    throw new RunfleetError('Unauthorized', `the command is for runner ${command.runner}, not for ${workflowId}`);
  if (Math.abs(Date.parse(command.at) - nowMs) > CLOCK_SKEW_MS)
    throw new RunfleetError(
      'Unauthorized',
      `runner ${command.runner}: the signed ${command.action} of ${command.at} is too old`,
    );
}

/** `Unauthorized` unless the operator key signed this approval, of a task of the calling run, recently. */
export function verifyApprovalStatement(
  operatorKey: string | null,
  approval: ApprovalStatement,
  signature: string,
  workflowId: string | null,
  nowMs: number,
): void {
  requireOperatorKey(operatorKey, 'accepts no approval');
  if (approval?.kind !== APPROVAL_KIND || !verifyStatementNode(operatorKey, approval, signature))
    throw new RunfleetError(
      'Unauthorized',
      `the approval of task "${String(approval?.task)}" by ${String(approval?.by)} is not signed by the operator key`,
    );
  if (workflowId !== null && workflowId !== approval.run)
    throw new RunfleetError('Unauthorized', `the approval is for run ${approval.run}, not for ${workflowId}`);
  if (Math.abs(Date.parse(approval.at) - nowMs) > CLOCK_SKEW_MS)
    throw new RunfleetError('Unauthorized', `the approval signed at ${approval.at} is too old: approve again`);
}

/** `Unauthorized` when this control worker was given no operator public key: it then trusts nothing signed. */
function requireOperatorKey(operatorKey: string | null, refuses: string): asserts operatorKey is string {
  if (!operatorKey)
    throw new RunfleetError(
      'Unauthorized',
      `this control worker has no operator public key (operator.publicKey, RUNFLEET_OPERATOR_PUBLIC_KEY): it ${refuses}`,
    );
}

/** The workflow that scheduled this activity; null outside one (unit tests). */
function callerWorkflowId(): string | null {
  try {
    return Context.current().info.workflowExecution?.workflowId ?? null;
  } catch {
    return null;
  }
}
