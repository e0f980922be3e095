/**
 * Attacks on approvals (issue 10, item 7: `run approve --by` was taken on trust): a client with
 * namespace access approves a gated task without the operator key, with another key, or with an
 * approval signed for another run; each is refused and the task keeps waiting. The operator's
 * signed approval applies and records who approved.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, signStatement } from '../../src/security/operator';
import { approvalStatement } from '../../src/security/statements';
import { approveTaskUpdate } from '../../workflows/run-messages';
import { startHarness, type Harness } from '../helpers/harness';
import { testOperator } from '../helpers/operator-key';
import { uniqueName } from '../helpers/temporal';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runners: [{ name: uniqueName('approver-runner') }] });
});
afterAll(async () => {
  await h?.stop();
});

const gated = () => ({
  name: 'gated',
  tasks: [{ name: 'deploy', pool: h.pool, steps: ['true'], needs_approval: true }],
});

function signed(seed: string, run: string, task: string, by: string) {
  const at = new Date().toISOString();
  const nonce = randomBytes(16).toString('hex');
  return { at, nonce, signature: signStatement(seed, approvalStatement(run, task, by, { at, nonce })) };
}

async function attempt(workflowId: string, arg: unknown): Promise<string> {
  try {
    await h.client.workflow.getHandle(workflowId).executeUpdate(approveTaskUpdate, { args: [arg as never] });
    return 'applied';
  } catch (err) {
    const e = err as Error & { cause?: Error };
    return `refused: ${e.cause?.message ?? e.message}`;
  }
}

describe('approvals need the operator key', () => {
  it('refuses an unsigned approval, one signed by another key, and one signed for another run; the task waits', async () => {
    const run = await h.start(gated());
    const other = await h.start(gated());
    await h.waitFor(run, (s) => s.phase === 'running');
    const stranger = generateSigningKey();
    const tries: [string, unknown][] = [
      ['unsigned, --by mallory', { task: 'deploy', by: 'mallory' }],
      [
        'signed by a key of its own',
        { task: 'deploy', by: 'mallory', operator: signed(stranger.seed, run.workflowId, 'deploy', 'mallory') },
      ],
      [
        "the operator's approval of another run, replayed here",
        { task: 'deploy', by: 'alice', operator: signed(testOperator().seed, other.workflowId, 'deploy', 'alice') },
      ],
      [
        "the operator's approval with its name changed",
        { task: 'deploy', by: 'mallory', operator: signed(testOperator().seed, run.workflowId, 'deploy', 'alice') },
      ],
    ];
    for (const [what, arg] of tries) {
      const outcome = await attempt(run.workflowId, arg);
      console.log(`approve ${what}: ${outcome}`);
      expect(outcome).toMatch(/^refused: .*(must be signed|not signed by the operator key|approval of task)/);
    }
    const s = await h.state(run);
    expect(s.tasks['deploy']?.status).toBe('pending');
    expect(s.tasks['deploy']?.approval.approvedBy ?? null).toBeNull();
  });

  it("applies the operator's signed approval and records who approved", async () => {
    const run = await h.start(gated());
    await h.waitFor(run, (s) => s.phase === 'running');
    const outcome = await attempt(run.workflowId, {
      task: 'deploy',
      by: 'alice',
      operator: signed(testOperator().seed, run.workflowId, 'deploy', 'alice'),
    });
    console.log(`approve with the operator key: ${outcome}`);
    expect(outcome).toBe('applied');
    const done = await h.waitFor(run, (st) => st.phase === 'finished');
    expect(done.tasks['deploy']?.status).toBe('success');
    expect(done.tasks['deploy']?.approval.approvedBy).toBe('alice');
  });
});
